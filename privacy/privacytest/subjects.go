package privacytest

import (
	"github.com/stewardlabs/steward/privacy"
)

// subjectCases are the SubjectLister rules, run when the DataStore is
// one.
func subjectCases() []dsCase {
	return []dsCase{
		{Name: "SubjectLister: Subjects lists every user with data once, and no longer lists one after Erase", Run: dsSubjects},
	}
}

func (e *dsEnv) subjects() map[string]int {
	e.Helper()
	out := map[string]int{}
	for id, err := range e.s.(privacy.SubjectLister).Subjects(e.ctx) {
		if err != nil {
			e.Fatalf("Subjects: %v", err)
		}
		out[id]++
	}
	return out
}

func dsSubjects(e *dsEnv) {
	a, _ := e.seed()
	b, _ := e.seed()
	got := e.subjects()
	for _, id := range []string{a, b} {
		if got[id] != 1 {
			e.Errorf("Subjects lists a seeded user %d times, want once", got[id])
		}
	}
	if got[newUserID()] != 0 {
		e.Errorf("Subjects lists a user with no data")
	}
	if _, err := e.s.Erase(e.ctx, a); err != nil {
		e.Fatalf("Erase: %v", err)
	}
	got = e.subjects()
	if got[a] != 0 {
		e.Errorf("Subjects still lists a user after Erase")
	}
	if got[b] != 1 {
		e.Errorf("Subjects no longer lists another user after Erase of the first")
	}
}
