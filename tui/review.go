package tui

import (
	"fmt"
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/appliance/content"
)

// reviewTabs are the panes of the review screen, in order.
var reviewTabs = []string{"summary", "metadata", "diff", "provenance", "risks"}

// reviewScreen shows the review model in tabs. The diff pane scrolls and
// searches; the search only moves the view, it changes nothing.
type reviewScreen struct {
	root   *tview.Flex
	tabBar *tview.TextView
	pages  *tview.Pages
	panes  map[string]*tview.TextView
	search *tview.InputField
	tab    int
	shown  *appliance.Review
	plain  []string // the diff pane's lines as shown, for search
	query  string
	hit    int // line of the last match
}

func newReviewScreen(app *tview.Application) *reviewScreen {
	s := &reviewScreen{
		tabBar: tview.NewTextView().SetDynamicColors(true),
		pages:  tview.NewPages(),
		panes:  map[string]*tview.TextView{},
		search: tview.NewInputField().SetLabel("search: "),
		hit:    -1,
	}
	for i, name := range reviewTabs {
		tv := tview.NewTextView().SetDynamicColors(true).SetWrap(name != "diff").SetScrollable(true)
		s.panes[name] = tv
		s.pages.AddPage(name, tv, true, i == 0)
	}
	s.root = tview.NewFlex().SetDirection(tview.FlexRow).
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
		switch {
		case ev.Key() == tcell.KeyRight:
			s.setTab(s.tab + 1)
			return nil
		case ev.Key() == tcell.KeyLeft:
			s.setTab(s.tab - 1)
			return nil
		case ev.Key() == tcell.KeyRune && ev.Rune() == '/':
			s.setTab(2)
			s.root.ResizeItem(s.search, 1, 0)
			s.search.SetText("")
			app.SetFocus(s.search)
			return nil
		case ev.Key() == tcell.KeyRune && ev.Rune() == 'n':
			s.next()
			return nil
		}
		return ev
	})
	s.drawTabs()
	return s
}

// searching reports whether the search line has the focus.
func (s *reviewScreen) searching() bool { return s.search.HasFocus() }

func (s *reviewScreen) setTab(i int) {
	if i < 0 || i >= len(reviewTabs) {
		return
	}
	s.tab = i
	s.pages.SwitchToPage(reviewTabs[i])
	s.drawTabs()
}

func (s *reviewScreen) drawTabs() {
	var b strings.Builder
	for i, name := range reviewTabs {
		if i == s.tab {
			fmt.Fprintf(&b, "[black:white] %d %s [-:-] ", i+1, name)
		} else {
			fmt.Fprintf(&b, " %d %s  ", i+1, name)
		}
	}
	s.tabBar.SetText(b.String())
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
			s.panes["diff"].ScrollTo(n, 0)
			return
		}
	}
}

func (s *reviewScreen) update(st appliance.State) {
	r := st.Review
	if r == s.shown {
		return // the review model never changes once verified
	}
	s.shown = r
	if r == nil {
		for _, tv := range s.panes {
			tv.SetText("")
		}
		return
	}
	s.panes["summary"].SetText(reviewSummary(r))
	s.panes["metadata"].SetText(reviewMetadata(r))
	diff, plain := reviewDiff(r)
	s.panes["diff"].SetText(diff)
	s.plain = plain
	s.panes["provenance"].SetText(reviewProvenance(r))
	s.panes["risks"].SetText(reviewRisks(r))
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
		fmt.Fprintf(&b, "\n[white:red] %d high risk signals [-:-] see tab 5\n", high)
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

// reviewDiff renders every artifact's file diff; plain holds each shown
// line's text for search.
func reviewDiff(r *appliance.Review) (string, []string) {
	var b strings.Builder
	var plain []string
	line := func(markup, text string) {
		b.WriteString(markup + "\n")
		plain = append(plain, text)
	}
	if !r.ContentAvailable {
		line("[yellow]"+Escape(r.ContentNote)+"[-]", r.ContentNote)
	}
	for _, a := range r.Artifacts {
		line("[::b]"+Escape(a.Target)+"[::-]", a.Target)
		d := a.Content
		if d == nil {
			line("  "+Escape(a.ContentNote), a.ContentNote)
			continue
		}
		sum := fmt.Sprintf("  %d added, %d removed, %d changed files; +%d -%d lines", d.Added, d.Removed, d.Changed, d.LinesAdded, d.LinesRemoved)
		line(sum, sum)
		for _, f := range d.Files {
			head := fmt.Sprintf("%s %s %s", f.Change, f.Path, strings.Join(f.What, ","))
			line("[aqua]"+Escape(head)+"[-]", head)
			if f.Binary {
				line("  (binary)", "  (binary)")
			}
			for _, h := range f.Hunks {
				hh := fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldStart, h.OldLines, h.NewStart, h.NewLines)
				line("[teal]"+Escape(hh)+"[-]", hh)
				for _, l := range h.Lines {
					color := ""
					switch l.Op {
					case content.OpInsert:
						color = "[green]"
					case content.OpDelete:
						color = "[red]"
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
	return b.String(), plain
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
