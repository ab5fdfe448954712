package content

import (
	"strings"

	"github.com/mtibben/confusables"
)

// popularNPM is a small list of widely installed npm package names that
// attackers imitate. A name on the list is never flagged.
var popularNPM = []string{
	"@angular/core", "@babel/core", "@babel/runtime", "@types/node", "@types/react",
	"ajv", "angular", "ansi-styles", "async", "autoprefixer", "axios", "babel-core", "babel-loader",
	"bcrypt", "bcryptjs", "bindings", "bluebird", "body-parser", "bootstrap", "browserslist",
	"buffer", "canvas", "chai", "chalk", "cheerio", "chokidar", "classnames", "coffee-script",
	"colors", "commander", "cookie", "cookie-parser", "core-js", "cors", "cross-env", "cross-fetch",
	"cross-spawn", "css-loader", "date-fns", "dayjs", "debug", "dotenv", "ejs", "electron",
	"esbuild", "eslint", "event-stream", "eventemitter3", "execa", "express", "faker", "fastify",
	"form-data", "fs-extra", "glob", "got", "graphql", "gulp", "grunt", "handlebars", "helmet",
	"highlight.js", "iconv-lite", "immutable", "inquirer", "jest", "joi", "jquery", "js-yaml",
	"jsdom", "jsonwebtoken", "knex", "less", "lodash", "luxon", "marked", "minimatch", "minimist",
	"mkdirp", "mocha", "moment", "mongodb", "mongoose", "morgan", "ms", "mysql", "nan", "nanoid",
	"next", "node-fetch", "node-gyp", "nodemon", "npm", "nuxt", "ora", "passport", "pg", "pino",
	"postcss", "prettier", "prop-types", "puppeteer", "qs", "ramda", "react", "react-dom",
	"react-redux", "react-router", "readable-stream", "redis", "redux", "request", "rimraf",
	"rollup", "rxjs", "sass", "semver", "sequelize", "sharp", "sinon", "socket.io", "source-map",
	"string-width", "strip-ansi", "styled-components", "superagent", "supports-color", "svelte",
	"tailwindcss", "through2", "tslib", "typescript", "ua-parser-js", "underscore", "uuid",
	"validator", "vite", "vue", "webpack", "webpack-cli", "winston", "ws", "xml2js", "yaml",
	"yargs", "yarn", "zod",
}

var popularSet = func() map[string]bool {
	m := make(map[string]bool, len(popularNPM))
	for _, n := range popularNPM {
		m[n] = true
	}
	return m
}()

// homoglyphs maps characters that look like Latin letters to them.
var homoglyphs = map[rune]rune{
	'0': 'o', '1': 'l', 'i': 'l', '|': 'l', '3': 'e', '5': 's', '$': 's', '@': 'a',
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'і': 'l', 'ј': 'j',
	'ѕ': 's', 'ԁ': 'd', 'һ': 'h', 'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l', 'ɡ': 'g', 'ı': 'l',
	'ο': 'o', 'α': 'a', 'ν': 'v', 'ι': 'l', 'κ': 'k', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x',
}

// skeleton folds a name to what it looks like: lower case, homoglyphs to
// Latin, "rn" to "m", "vv" to "w", separators dropped, invisible
// characters dropped.
func skeleton(s string) string {
	var b strings.Builder
	// Unicode's confusables data (UTS #39, confusables.txt as packaged by
	// github.com/mtibben/confusables) first, then case, the table above
	// for look-alikes it leaves distinct, and separators.
	for _, r := range strings.ToLower(unicodeSkeleton(s)) {
		if g, ok := homoglyphs[r]; ok {
			r = g
		}
		if r == '-' || r == '_' || r == '.' || hidden(r) {
			continue
		}
		b.WriteRune(r)
	}
	out := strings.ReplaceAll(b.String(), "rn", "m")
	return strings.ReplaceAll(out, "vv", "w")
}

// affixes are words attackers add to a popular name.
var affixes = []string{"-js", ".js", "js", "-node", "node-", "-npm", "npm-", "-cli", "-dev", "-core", "-utils", "-lib", "2", "-official"}

// maxCompareName bounds the names compared by edit distance.
const maxCompareName = 64

// confusable reports the popular package a name imitates and how, or "".
func confusable(name string) (like, why string) {
	if name == "" || popularSet[name] || len(name) > 214 {
		return "", ""
	}
	scope, bare, scoped := strings.Cut(name, "/")
	if !scoped {
		bare, scope = name, ""
	}
	sk := skeleton(name)
	for _, p := range popularNPM {
		if skeleton(p) == sk {
			if strings.ToLower(name) == p {
				return p, "differs only in case from"
			}
			return p, "looks the same as"
		}
	}
	if scope != "" {
		// A scoped name is only compared whole, against scoped names.
		for _, p := range popularNPM {
			if strings.HasPrefix(p, "@") && len(p) >= 6 && len(name) <= maxCompareName && editDistance(name, p) <= 1 {
				return p, "is one edit away from"
			}
		}
		return "", ""
	}
	for _, p := range popularNPM {
		if strings.HasPrefix(p, "@") {
			continue
		}
		for _, a := range affixes {
			if bare == p+a || bare == a+p {
				return p, "adds " + q(a) + " to"
			}
		}
	}
	if len(bare) > maxCompareName {
		return "", ""
	}
	for _, p := range popularNPM {
		if strings.HasPrefix(p, "@") || len(p) < 4 {
			continue
		}
		limit := 1
		if len(p) >= 9 {
			limit = 2
		}
		if d := editDistance(bare, p); d <= limit {
			return p, "is a typo away from"
		}
	}
	return "", ""
}

// editDistance is the optimal string alignment distance (Levenshtein with
// adjacent transpositions), over runes.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	prev2 := make([]int, len(y)+1)
	prev := make([]int, len(y)+1)
	cur := make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}

// unicodeSkeleton is UTS #39's skeleton of s.
var unicodeSkeleton = confusables.Skeleton
