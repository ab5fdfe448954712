package main

import "airlock.dev/airlock/appliance/content"

func visible(s string) string { return content.Visible(s) }
