package privacycenter_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkMarkup reports what keeps a page from being usable with a screen
// reader or a keyboard: a missing lang, not exactly one h1, a missing
// main, header, nav or footer landmark, a form control (other than
// hidden inputs and buttons) without a label (label for=, a wrapping
// label, aria-label or aria-labelledby), duplicate ids, an image
// without alt, a button without text, or markup that does not parse.
func checkMarkup(page string, wantNav bool) []string {
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	var (
		problems  []string
		h1        int
		landmarks = map[string]bool{}
		ids       = map[string]int{}
		labelFor  = map[string]bool{}
		controls  []string // ids (or "" for none) of controls needing a label
		inLabel   int
		button    *strings.Builder
		lang      bool
	)
	attr := func(e xml.StartElement, name string) (string, bool) {
		for _, a := range e.Attr {
			if strings.EqualFold(a.Name.Local, name) {
				return a.Value, true
			}
		}
		return "", false
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return append(problems, "does not parse: "+err.Error())
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(t.Name.Local)
			if id, ok := attr(t, "id"); ok {
				ids[id]++
			}
			if role, ok := attr(t, "role"); ok {
				landmarks[role] = true
			}
			switch name {
			case "html":
				_, lang = attr(t, "lang")
			case "h1":
				h1++
			case "main", "header", "nav", "footer":
				landmarks[name] = true
			case "label":
				inLabel++
				if f, ok := attr(t, "for"); ok {
					labelFor[f] = true
				}
			case "img":
				if _, ok := attr(t, "alt"); !ok {
					problems = append(problems, "an img without alt")
				}
			case "button":
				button = &strings.Builder{}
			case "input", "select", "textarea":
				typ, _ := attr(t, "type")
				if typ == "hidden" || typ == "submit" || typ == "button" {
					break
				}
				_, aria := attr(t, "aria-label")
				_, labelled := attr(t, "aria-labelledby")
				if aria || labelled || inLabel > 0 {
					break
				}
				id, _ := attr(t, "id")
				n, _ := attr(t, "name")
				controls = append(controls, id+"|"+n)
			}
		case xml.CharData:
			if button != nil {
				button.Write(t)
			}
		case xml.EndElement:
			switch strings.ToLower(t.Name.Local) {
			case "label":
				inLabel--
			case "button":
				if button != nil && strings.TrimSpace(button.String()) == "" {
					problems = append(problems, "a button without text")
				}
				button = nil
			}
		}
	}
	if !lang {
		problems = append(problems, "html has no lang")
	}
	if h1 != 1 {
		problems = append(problems, fmt.Sprintf("%d h1 elements, want exactly 1", h1))
	}
	want := []string{"main", "header", "footer"}
	if wantNav {
		want = append(want, "nav")
	}
	for _, l := range want {
		if !landmarks[l] {
			problems = append(problems, "no "+l+" landmark")
		}
	}
	for id, n := range ids {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("id %q used %d times", id, n))
		}
	}
	for _, c := range controls {
		id, name, _ := strings.Cut(c, "|")
		if id == "" || !labelFor[id] {
			problems = append(problems, fmt.Sprintf("control %q (id %q) has no label", name, id))
		}
	}
	return problems
}

// The checker must fail bad pages, or the accessibility tests pass for
// nothing.
func TestCheckMarkupCatchesProblems(t *testing.T) {
	good := `<!DOCTYPE html><html lang="en"><head><title>x</title></head><body><header><nav><a href="/">x</a></nav></header>
<main><h1>Title</h1><form><label for="a">A</label><input id="a" name="a"><label>B <input name="b"></label>
<input type="hidden" name="h"><button type="submit">Go</button></form></main><footer>f</footer></body></html>`
	if got := checkMarkup(good, true); len(got) != 0 {
		t.Errorf("a good page: %v", got)
	}
	tests := []struct {
		name, page string
		want       []string
	}{
		{"an unlabelled input, two h1, no footer, a duplicate id and an empty button",
			`<html lang="en"><body><header></header><nav></nav><main><h1>a</h1><h1 id="x">b</h1><p id="x"></p><input id="q" name="q"><button></button></main></body></html>`,
			[]string{"2 h1 elements, want exactly 1", "a button without text", "control \"q\" (id \"q\") has no label", "id \"x\" used 2 times", "no footer landmark"}},
		{"no lang, no main, a label for another control, an image without alt",
			`<html><body><header><nav></nav></header><h1>a</h1><label for="other">x</label><select id="s" name="s"></select><img src="a.png"><footer></footer></body></html>`,
			[]string{"an img without alt", "control \"s\" (id \"s\") has no label", "html has no lang", "no main landmark"}},
	}
	for _, tt := range tests {
		got := checkMarkup(tt.page, true)
		if diff := cmp.Diff(sorted(tt.want), sorted(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
