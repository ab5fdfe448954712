package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

func cmdRecord(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return cli.Usagef("airlock record needs the subcommand verify: airlock record verify RECORD [RESPONSE]")
	}
	fs := cli.NewFlagSet("airlock record verify", `usage: airlock record verify RECORD [RESPONSE] [--json]

Verifies an exported ceremony record (record.json): its hash chain and
canonical form, and that it records one finished ceremony (started,
verified, approved by at least two holders, recorded in the ledger, signed
and exported, nothing refused). With RESPONSE it also checks that the record
belongs to it: the response's record_sha256 is the record's SHA-256, and the
ceremony, payload hash, holders and every signature agree.
`, stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := cli.Parse(fs, moveFlagsFirst(args[1:])); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return cli.Usagef("want RECORD and optionally RESPONSE")
	}
	record, err := readRecord(fs.Arg(0))
	if err != nil {
		return err
	}
	var resp *tuf.Response
	if fs.NArg() == 2 {
		if resp, err = online.ReadResponse(fs.Arg(1)); err != nil {
			return err
		}
	}
	rep, err := appliance.VerifyRecord(record, resp)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	dev := ""
	if rep.Dev {
		dev = " (development mode)"
	}
	fmt.Fprintf(stdout, "ceremony %s%s: %d entries verified; payload sha256 %s approved by %s, signed by %d key(s)\n",
		rep.Ceremony, dev, rep.Entries, rep.SignedSHA256, strings.Join(rep.Holders, ", "), len(rep.KeyIDs))
	if rep.Response {
		fmt.Fprintf(stdout, "the record belongs to %s: record sha256 %s, every signature matches\n", fs.Arg(1), rep.RecordSHA256)
	}
	return nil
}

// readRecord reads a record file within the record cap.
func readRecord(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, audit.MaxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > audit.MaxRecordSize {
		return nil, fmt.Errorf("%s: over the %d-byte cap of a ceremony record", name, audit.MaxRecordSize)
	}
	return b, nil
}

// recordFor is the record exported beside a response: record.json in the
// folder of a response.json, else NAME.record.json beside NAME.json.
func recordFor(response string) string {
	dir, base := filepath.Split(response)
	if base == appliance.ResponseFile {
		return filepath.Join(dir, appliance.RecordFile)
	}
	return filepath.Join(dir, strings.TrimSuffix(base, ".json")+".record.json")
}

// checkRecords verifies the ceremony record of every response: a record
// that does not verify or belong to its response is refused; a missing one
// is refused unless dev.
// checkRecords verifies the ceremony record beside each response
// (RESPONSE.record.json or the folder's record.json). A missing record is
// refused unless allowMissing, and then said on warn.
func checkRecords(files []string, resps []*tuf.Response, allowMissing bool, warn io.Writer) error {
	for i, r := range resps {
		name := recordFor(files[i])
		record, err := readRecord(name)
		if os.IsNotExist(err) {
			if allowMissing {
				fmt.Fprintf(warn, "warning: response %s (ceremony %s) has no ceremony record at %s; its signatures are verified, the ceremony that made them is not\n", files[i], r.CeremonyID, name)
				continue
			}
			return fmt.Errorf("response %s (ceremony %s): no ceremony record at %s: copy the record.json exported with it there (a response sent by QR has its record in the next folder or USB export), or combine with --without-record", files[i], r.CeremonyID, name)
		}
		if err != nil {
			return err
		}
		if _, err := appliance.VerifyRecord(record, r); err != nil {
			return fmt.Errorf("response %s: %s: %w; do not combine it", files[i], name, err)
		}
	}
	return nil
}
