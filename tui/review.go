package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/appliance/content"
)

// reviewTabs are the panes of the review screen, in order; digit keys
// 1 to 6 pick them.
var reviewTabs = []string{"summary", "files", "diff", "metadata", "provenance", "risks"}

// Indexes of the tabs the keys jump to.
const (
	tabFiles = 1
	tabDiff  = 2
)

// reviewScreen shows the review model in tabs, under two lines that stay in
// view on every tab: what the approvals must reach (threshold, groups) and
// each holder's state. The files tab lists every changed file with its
// counts and risk marker; Enter on one opens the diff there. In the diff,
// ] and [ go to the next and previous file, ! to the next risk, / searches
// and n finds the next match. Moving and searching change nothing.
type reviewScreen struct {
	root   *tview.Flex
	need   *tview.TextView
	tabBar *tview.TextView
	pages  *tview.Pages
	panes  map[string]*tview.TextView
	files  *tview.List
	search *tview.InputField
	tab    int
	shown  *appliance.Review
	plain  []string // the diff pane's lines as shown, for search
	index  diffIndex
	query  string
	hit    int // line of the last match
	app    *tview.Application
}

// diffIndex locates files and risks in the diff pane's lines.
type diffIndex struct {
	files []int // line of each file's header, in list order
	risks []int // lines with a risk signal, ascending
}

func newReviewScreen(app *tview.Application) *reviewScreen {
	s := &reviewScreen{
		need:   tview.NewTextView().SetDynamicColors(true).SetWrap(true),
		tabBar: tview.NewTextView().SetDynamicColors(true),
		pages:  tview.NewPages(),
		panes:  map[string]*tview.TextView{},
		files:  tview.NewList().ShowSecondaryText(false).SetHighlightFullLine(true),
		search: tview.NewInputField().SetLabel("search: "),
		hit:    -1,
		app:    app,
	}
	s.files.SetSelectedBackgroundColor(tcell.ColorBlue).SetSelectedTextColor(tcell.ColorWhite)
	for i, name := range reviewTabs {
		if name == "files" {
			s.pages.AddPage(name, s.files, true, i == 0)
			continue
		}
		tv := tview.NewTextView().SetDynamicColors(true).SetWrap(name != "diff").SetScrollable(true)
		s.panes[name] = tv
		s.pages.AddPage(name, tv, true, i == 0)
	}
	s.root = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(s.need, 2, 0, false).
		AddItem(s.tabBar, 1, 0, false).
		AddItem(s.pages, 0, 1, true).
		AddItem(s.search, 0, 0, false)
	s.root.SetBorder(true).SetTitle(" 4 review: what will be signed ")
	s.search.SetDoneFunc(func(k tcell.Key) {
		if k == tcell.KeyEnter {
			s.query = s.search.GetText()
			s.hit = -1
			s.next()
		}
		s.root.ResizeItem(s.search, 0, 0)
		app.SetFocus(s.pages)
	})
	s.root.SetInputCapture(func(ev *tcell.EventKey) *tcell.EventKey {
		if s.search.HasFocus() {
			return ev
		}
		if ev.Key() == tcell.KeyRune {
			r := ev.Rune()
			switch {
			case r >= '1' && r < '1'+rune(len(reviewTabs)):
				s.setTab(int(r - '1'))
				return nil
			case r == '/':
				s.setTab(tabDiff)
				s.root.ResizeItem(s.search, 1, 0)
				s.search.SetText("")
				app.SetFocus(s.search)
				return nil
			case r == 'n':
				s.next()
				return nil
			case r == ']':
				s.jump(s.index.files, +1)
				return nil
			case r == '[':
				s.jump(s.index.files, -1)
				return nil
			case r == '!':
				s.jump(s.index.risks, +1)
				return nil
			}
		}
		switch ev.Key() {
		case tcell.KeyRight:
			s.setTab(s.tab + 1)
			return nil
		case tcell.KeyLeft:
			s.setTab(s.tab - 1)
			return nil
		}
		return ev
	})
	s.files.SetSelectedFunc(func(i int, _, _ string, _ rune) {
		if i >= 0 && i < len(s.index.files) {
			s.scrollDiff(s.index.files[i])
		}
	})
	s.drawTabs()
	return s
}

// wantsEnter reports whether Enter belongs to the review (a file chosen in
// the files tab) rather than to a pending question.
func (s *reviewScreen) wantsEnter() bool { return s.tab == tabFiles && s.files.HasFocus() }

// searching reports whether the search line has the focus.
func (s *reviewScreen) searching() bool { return s.search.HasFocus() }

func (s *reviewScreen) setTab(i int) {
	if i < 0 || i >= len(reviewTabs) {
		return
	}
	s.tab = i
	s.pages.SwitchToPage(reviewTabs[i])
	if s.root.HasFocus() && !s.search.HasFocus() {
		s.app.SetFocus(s.pages)
	}
	s.drawTabs()
}

func (s *reviewScreen) drawTabs() {
	var b strings.Builder
	for i, name := range reviewTabs {
		if i == s.tab {
			fmt.Fprintf(&b, "[black:white]%d %s[-:-] ", i+1, name)
		} else {
			fmt.Fprintf(&b, "%d %s ", i+1, name)
		}
	}
	s.tabBar.SetText(b.String())
}

// scrollDiff shows the diff tab from line n.
func (s *reviewScreen) scrollDiff(n int) {
	s.setTab(tabDiff)
	s.panes["diff"].ScrollTo(n, 0)
}

// jump scrolls the diff to the next (dir +1) or previous (dir -1) of the
// lines after or before the top line shown, wrapping around.
func (s *reviewScreen) jump(lines []int, dir int) {
	if len(lines) == 0 {
		return
	}
	top, _ := s.panes["diff"].GetScrollOffset()
	if s.tab != tabDiff {
		top = -1 // from another tab: the first one
		if dir < 0 {
			top = len(s.plain)
		}
	}
	target := -1
	if dir > 0 {
		for _, l := range lines {
			if l > top {
				target = l
				break
			}
		}
		if target < 0 {
			target = lines[0]
		}
	} else {
		for i := len(lines) - 1; i >= 0; i-- {
			if lines[i] < top {
				target = lines[i]
				break
			}
		}
		if target < 0 {
			target = lines[len(lines)-1]
		}
	}
	s.scrollDiff(target)
}

// next scrolls the diff to the next line containing the query.
func (s *reviewScreen) next() {
	if s.query == "" {
		return
	}
	for i := 1; i <= len(s.plain); i++ {
		n := (s.hit + i) % len(s.plain)
		if strings.Contains(s.plain[n], s.query) {
			s.hit = n
			s.scrollDiff(n)
			return
		}
	}
}

func (s *reviewScreen) update(st appliance.State) {
	s.need.SetText(needLines(st))
	r := st.Review
	if r == s.shown {
		return // the review model never changes once verified
	}
	s.shown = r
	s.files.Clear()
	if r == nil {
		for _, tv := range s.panes {
			tv.SetText("")
		}
		s.plain, s.index = nil, diffIndex{}
		return
	}
	s.panes["summary"].SetText(reviewSummary(r))
	s.panes["metadata"].SetText(reviewMetadata(r))
	diff, plain, index := reviewDiff(r)
	s.panes["diff"].SetText(diff)
	s.plain, s.index = plain, index
	for _, item := range fileItems(r) {
		s.files.AddItem(item, "", 0, nil)
	}
	if s.files.GetItemCount() == 0 {
		s.files.AddItem("No file content to review: "+Escape(r.ContentNote), "", 0, nil)
	}
	s.panes["provenance"].SetText(reviewProvenance(r))
	s.panes["risks"].SetText(reviewRisks(r))
}

// needLines are the two lines above the tabs: what the approvals must
// reach, and each holder with their state.
func needLines(st appliance.State) string {
	n := st.Need
	if n == nil {
		return "[::d]Approvals: shown once the bundle is verified[::-]"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Needs [::b]%d[::-] signatures from [::b]%d[::-] different holders", n.Threshold, n.MinHolders)
	if n.OldThreshold > 0 {
		fmt.Fprintf(&b, " (old root: %d)", n.OldThreshold)
	}
	holderOf := map[string]string{}
	var holders []string
	for _, k := range n.Keys {
		holderOf[k.KeyID] = k.Holder
		if !slices.Contains(holders, k.Holder) {
			holders = append(holders, k.Holder)
		}
	}
	for _, g := range n.Groups {
		var hs []string
		for _, id := range g.KeyIDs {
			if h := holderOf[id]; h != "" && !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
		fmt.Fprintf(&b, "; group %s: %d of %s", Escape(g.Name), g.Min, Escape(strings.Join(hs, ", ")))
	}
	b.WriteString("\n")
	slices.Sort(holders)
	approved := map[string]bool{}
	for _, a := range st.Approvals {
		approved[a.Holder] = true
	}
	for i, h := range holders {
		if i > 0 {
			b.WriteString("  ")
		}
		if approved[h] {
			fmt.Fprintf(&b, "[black:green]%s[-:-] %s", Escape("[x]"), Escape(h))
		} else {
			fmt.Fprintf(&b, "[ ] %s", Escape(h))
		}
	}
	fmt.Fprintf(&b, "   %d of %d approved", len(st.Approvals), n.MinHolders)
	return b.String()
}

// fileItems are the lines of the files tab: a risk marker (!! high, !
// warning), the change, the line counts and the path.
func fileItems(r *appliance.Review) []string {
	var out []string
	for _, a := range r.Artifacts {
		d := a.Content
		if d == nil {
			continue
		}
		for _, f := range d.Files {
			mark := "  "
			switch fileRisk(d, f.Path) {
			case content.High:
				mark = "[white:red]!![-:-]"
			case content.Warn:
				mark = "[black:yellow]! [-:-]"
			}
			counts := fmt.Sprintf("+%d -%d", f.LinesAdded, f.LinesRemoved)
			if f.Binary {
				counts = "binary"
			}
			out = append(out, fmt.Sprintf("%s %-7s %-11s %s", mark, Escape(string(f.Change)), counts, Escape(f.Path)))
		}
	}
	return out
}

// fileCounts counts the changed files and those with a risk signal.
func fileCounts(r *appliance.Review) (files, risky int) {
	for _, a := range r.Artifacts {
		if a.Content == nil {
			continue
		}
		for _, f := range a.Content.Files {
			files++
			if fileRisk(a.Content, f.Path) != "" {
				risky++
			}
		}
	}
	return files, risky
}

// fileRisk is the highest severity of the signals about path.
func fileRisk(d *content.Diff, path string) content.Severity {
	var worst content.Severity
	for _, sig := range d.Signals {
		if sig.File != path {
			continue
		}
		switch {
		case sig.Severity == content.High:
			return content.High
		case sig.Severity == content.Warn:
			worst = content.Warn
		}
	}
	return worst
}

func reviewSummary(r *appliance.Review) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of role [::b]%s[::-] (delegated by %s)\n", Escape(r.Kind), Escape(r.Role), Escape(r.Delegator))
	fmt.Fprintf(&b, "Version %d -> [::b]%d[::-], expires %s\n", r.OldVersion, r.NewVersion, r.NewExpires.UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "\nBytes to sign (%d bytes), check this on every holder's own view:\n", r.Bytes)
	fmt.Fprintf(&b, "  fingerprint [black:white] %s [-:-]\n  sha256 %s\n", Escape(r.Fingerprint), Escape(r.SHA256))
	if r.Dev {
		b.WriteString("\n[black:yellow] development mode [-:-] software keys may sign\n")
	}
	if files, risky := fileCounts(r); files > 0 {
		fmt.Fprintf(&b, "\n%d changed files, %d with risk signals: tab 2 lists them, Enter opens one\n", files, risky)
	}
	if len(r.Targets) > 0 {
		b.WriteString("\nTargets:\n")
		for _, t := range r.Targets {
			var length int64
			if t.New != nil {
				length = t.New.Length
			} else if t.Old != nil {
				length = t.Old.Length
			}
			fmt.Fprintf(&b, "  %-8s %s (%d bytes)\n", Escape(t.Change), Escape(t.Path), length)
		}
	}
	high := 0
	for _, sig := range r.AllSignals() {
		if sig.Severity == content.High {
			high++
		}
	}
	if high > 0 {
		fmt.Fprintf(&b, "\n[white:red] %d high risk signals [-:-] see tab 6; ! jumps to each in the diff\n", high)
	}
	if !r.ContentAvailable && r.ContentNote != "" {
		fmt.Fprintf(&b, "\n[yellow]%s[-]\n", Escape(r.ContentNote))
	}
	if r.Note != "" {
		fmt.Fprintf(&b, "\nNote from CI (untrusted): %s\n", Escape(r.Note))
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "[yellow]warning:[-] %s\n", Escape(w))
	}
	return b.String()
}

func reviewMetadata(r *appliance.Review) string {
	var b strings.Builder
	if !r.OldExpires.IsZero() {
		fmt.Fprintf(&b, "Expiry: %s -> %s\n", r.OldExpires.UTC().Format("2006-01-02"), r.NewExpires.UTC().Format("2006-01-02"))
	}
	if len(r.Roles) == 0 {
		b.WriteString("No key, threshold, group or delegation changes.\n")
	}
	for _, rc := range r.Roles {
		fmt.Fprintf(&b, "\n[yellow]%s[-] role %s\n", Escape(rc.Change), Escape(rc.Name))
		for _, side := range []struct {
			name string
			f    *appliance.RoleFacts
		}{{"old", rc.Old}, {"new", rc.New}} {
			if side.f == nil {
				continue
			}
			fmt.Fprintf(&b, "  %s: threshold %d, %d keys, paths %s\n", side.name, side.f.Threshold, len(side.f.Keys), Escape(strings.Join(side.f.Paths, " ")))
			for _, k := range side.f.Keys {
				att := "not attested"
				if k.Attested {
					att = "attested"
				}
				fmt.Fprintf(&b, "    %s %s %s %s\n", Escape(short(k.KeyID)), Escape(k.Holder), Escape(k.Kind), att)
			}
			for _, g := range side.f.Groups {
				fmt.Fprintf(&b, "    group %s: %d of %d keys\n", Escape(g.Name), g.Min, len(g.KeyIDs))
			}
		}
	}
	if n := r.Signers; n != nil {
		fmt.Fprintf(&b, "\nSigning needs %d signatures from %d holders.\n", n.Threshold, n.MinHolders)
	}
	return b.String()
}

// reviewDiff renders every artifact's file diff. Added lines start with +
// (green), removed lines with - (red), so the diff reads the same in 16
// colours and in monochrome. plain holds each shown line's text for
// search; index locates each file's header and each line a risk signal
// names.
func reviewDiff(r *appliance.Review) (string, []string, diffIndex) {
	var b strings.Builder
	var plain []string
	var index diffIndex
	line := func(markup, text string) {
		b.WriteString(markup + "\n")
		plain = append(plain, text)
	}
	// The diff does not wrap (code keeps its columns); notes are prose and
	// are wrapped here so that an 80-column console shows them whole.
	note := func(indent, style, text string) {
		for _, l := range wordWrap(text, diffNoteWidth-len(indent)) {
			m := indent + Escape(l)
			if style != "" {
				m = indent + style + Escape(l) + "[-]"
			}
			line(m, indent+l)
		}
	}
	if !r.ContentAvailable {
		note("", "[yellow]", r.ContentNote)
	}
	for _, a := range r.Artifacts {
		line("[::b]"+Escape(a.Target)+"[::-]", a.Target)
		d := a.Content
		if d == nil {
			note("  ", "", a.ContentNote)
			continue
		}
		sum := fmt.Sprintf("  %d added, %d removed, %d changed files; +%d -%d lines", d.Added, d.Removed, d.Changed, d.LinesAdded, d.LinesRemoved)
		line(sum, sum)
		for _, f := range d.Files {
			riskAt := map[int]bool{} // new-file line numbers with a signal
			fileRisk := false
			for _, sig := range d.Signals {
				if sig.File == f.Path {
					fileRisk = true
					if sig.Line > 0 {
						riskAt[sig.Line] = true
					}
				}
			}
			index.files = append(index.files, len(plain))
			if fileRisk {
				index.risks = append(index.risks, len(plain))
			}
			head := fmt.Sprintf("%s %s %s", f.Change, f.Path, strings.Join(f.What, ","))
			line("[black:aqua]"+Escape(head)+"[-:-]", head)
			if f.Binary {
				line("  (binary)", "  (binary)")
			}
			for _, h := range f.Hunks {
				hh := fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldStart, h.OldLines, h.NewStart, h.NewLines)
				line("[teal]"+Escape(hh)+"[-]", hh)
				newLine := h.NewStart
				for _, l := range h.Lines {
					color := ""
					switch l.Op {
					case content.OpInsert:
						color = "[green]"
					case content.OpDelete:
						color = "[red]"
					}
					if l.Op != content.OpDelete {
						if riskAt[newLine] && len(index.risks) > 0 && index.risks[len(index.risks)-1] != len(plain) {
							index.risks = append(index.risks, len(plain))
						}
						newLine++
					}
					text := string(l.Op) + l.Text
					m := color + EscapeLine(text)
					if color != "" {
						m += "[-]"
					}
					line(m, Plain(text))
				}
			}
			if f.Note != "" {
				line("[yellow]"+Escape(f.Note)+"[-]", f.Note)
			}
		}
		if d.Note != "" {
			line("[yellow]"+Escape(d.Note)+"[-]", d.Note)
		}
	}
	return b.String(), plain, index
}

func reviewProvenance(r *appliance.Review) string {
	var b strings.Builder
	for _, a := range r.Artifacts {
		fmt.Fprintf(&b, "[::b]%s[::-]\n", Escape(a.Target))
		p := a.Provenance
		if p == nil {
			b.WriteString("  no provenance (the role's policy does not ask for it)\n")
			continue
		}
		switch {
		case p.Verified:
			b.WriteString("  [black:green] VERIFIED [-:-]\n")
		case p.Present:
			b.WriteString("  [white:red] NOT VERIFIED [-:-]\n")
		default:
			b.WriteString("  [white:red] MISSING [-:-]\n")
		}
		for _, kv := range [][2]string{
			{"repository", p.Repository}, {"commit", p.Commit}, {"ref", p.Ref}, {"workflow", p.Workflow},
			{"trigger", p.Trigger}, {"builder", p.Builder}, {"run", p.RunURL}, {"issuer", p.Issuer},
			{"subject", p.SubjectName},
		} {
			if kv[1] != "" {
				fmt.Fprintf(&b, "  %-11s %s\n", kv[0], Escape(kv[1]))
			}
		}
		if p.LogIndex > 0 {
			fmt.Fprintf(&b, "  %-11s %d at %s\n", "log index", p.LogIndex, p.IntegratedTime.UTC().Format("2006-01-02 15:04"))
		}
		for _, c := range p.Checks {
			mark := "[green]pass[-]"
			if !c.OK {
				mark = "[red]FAIL[-]"
			}
			fmt.Fprintf(&b, "  %s %s: %s\n", mark, Escape(c.Name), Escape(c.Detail))
		}
	}
	return b.String()
}

func reviewRisks(r *appliance.Review) string {
	var b strings.Builder
	sigs := r.AllSignals()
	for _, sig := range sigs {
		tag := "[white]info[-]"
		switch sig.Severity {
		case content.High:
			tag = "[white:red] HIGH [-:-]"
		case content.Warn:
			tag = "[black:yellow] warn [-:-]"
		}
		where := sig.File
		if sig.Line > 0 {
			where = fmt.Sprintf("%s:%d", sig.File, sig.Line)
		}
		fmt.Fprintf(&b, "%s %s %s\n      %s\n", tag, Escape(string(sig.Kind)), Escape(where), Escape(sig.Detail))
	}
	if len(sigs) == 0 {
		b.WriteString("No risk signals.\n")
	}
	return b.String()
}

// diffNoteWidth is the width prose notes in the diff are wrapped to: an
// 80-column console less the review's frame.
const diffNoteWidth = 76

// wordWrap breaks s into lines of at most width characters at spaces; a
// word longer than width is cut.
func wordWrap(s string, width int) []string {
	var out []string
	var cur []rune
	for _, w := range strings.Fields(s) {
		rw := []rune(w)
		for len(rw) > width {
			if len(cur) > 0 {
				out = append(out, string(cur))
				cur = nil
			}
			out = append(out, string(rw[:width]))
			rw = rw[width:]
		}
		switch {
		case len(cur) == 0:
			cur = rw
		case len(cur)+1+len(rw) <= width:
			cur = append(append(cur, ' '), rw...)
		default:
			out = append(out, string(cur))
			cur = rw
		}
	}
	if len(cur) > 0 || len(out) == 0 {
		out = append(out, string(cur))
	}
	return out
}
