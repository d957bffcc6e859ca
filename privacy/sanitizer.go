package privacy

import "fmt"

// Sanitizer declares the fields of Record.Data that are never exported,
// such as internal notes and administrative flags. Fields are named per
// category; the category "*" applies to every category:
//
//	privacy.Sanitizer{Drop: map[string][]string{
//		"orders": {"internalNotes"},
//		"*":      {"adminFlags"},
//	}}
//
// Only top-level fields are dropped; drop a parent field to hide what is
// nested in it. The zero Sanitizer drops nothing. Configure one with
// WithSanitizer.
type Sanitizer struct {
	// Drop maps a category (or "*") to field names removed from its
	// records' Data.
	Drop map[string][]string
}

// Validate reports an empty category or field name, wrapping
// ErrInvalidConfig.
func (s Sanitizer) Validate() error {
	for cat, fields := range s.Drop {
		if cat == "" {
			return fmt.Errorf("%w: Sanitizer.Drop: empty category (use \"*\" for every category)", ErrInvalidConfig)
		}
		for _, f := range fields {
			if f == "" {
				return fmt.Errorf("%w: Sanitizer.Drop[%q]: empty field name", ErrInvalidConfig, cat)
			}
		}
	}
	return nil
}

// Sanitize returns r without the dropped fields. r's Data is never
// modified: when a field must go, the result has a new map sharing the
// remaining values; otherwise it is r itself.
func (s Sanitizer) Sanitize(r Record) Record {
	if len(s.Drop) == 0 || len(r.Data) == 0 {
		return r
	}
	all, own := s.Drop["*"], s.Drop[r.Category]
	hit := false
	for _, list := range [2][]string{all, own} {
		for _, f := range list {
			if _, ok := r.Data[f]; ok {
				hit = true
			}
		}
	}
	if !hit {
		return r
	}
	data := make(map[string]any, len(r.Data))
	for k, v := range r.Data {
		data[k] = v
	}
	for _, list := range [2][]string{all, own} {
		for _, f := range list {
			delete(data, f)
		}
	}
	return Record{Category: r.Category, Data: data}
}
