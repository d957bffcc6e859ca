package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stewardlabs/steward/privacy"
	"github.com/stewardlabs/steward/privacy/sqldata"
	"github.com/stewardlabs/steward/retention"
	"github.com/stewardlabs/steward/retention/sqltarget"
	"github.com/stewardlabs/steward/sqlstore"
)

// declarations is the --config file: what the application registers
// with its privacy.Service and retention.Engine, written as JSON so the
// command builds the same ones. doc.go shows an example.
type declarations struct {
	// StoreName, Tables and Undeclared declare the sqldata DataStore
	// (sqldata.WithName, the tables, sqldata.WithUndeclared).
	StoreName  string      `json:"storeName"`
	Tables     []tableDecl `json:"tables"`
	Undeclared []string    `json:"undeclared"`
	// Consent registers the consent records (consent.Manager.DataStore)
	// after the tables.
	Consent bool `json:"consent"`
	// IdentityName and Regime are privacy.WithIdentityName and
	// privacy.WithRegime.
	IdentityName string         `json:"identityName"`
	Regime       privacy.Regime `json:"regime"`
	// Retention declares the retention policies, each over one table.
	Retention []policyDecl `json:"retention"`
}

// tableDecl is a sqldata.Table whose Anonymise is written as JSON.
type tableDecl struct {
	sqldata.Table
	Anonymise []setDecl `json:"anonymise"`
}

// setDecl is one sqldata.Set: exactly one of Null, Fixed and ErasedAt.
type setDecl struct {
	Column   string `json:"column"`
	Null     bool   `json:"null"`
	Fixed    any    `json:"fixed"`
	ErasedAt bool   `json:"erasedAt"`
}

// policyDecl is a retention.Policy over a sqltarget.Table.
type policyDecl struct {
	Name          string           `json:"name"`
	Table         string           `json:"table"`
	TimeColumn    string           `json:"timeColumn"`
	Epoch         string           `json:"epoch"`
	SubjectColumn string           `json:"subjectColumn"`
	Anonymise     []string         `json:"anonymise"`
	MaxAge        string           `json:"maxAge"`
	Action        retention.Action `json:"action"`
	BatchSize     int              `json:"batchSize"`
}

// configName names the --config file in errors.
func (a *app) configName() string {
	if f := a.setting(a.configFile, envConfig, ""); f != "" {
		return "config " + f
	}
	return "configuration"
}

// declarations reads the --config file once; without one the application
// is taken to register no DataStores and no retention policies.
func (a *app) declarations() (*declarations, error) {
	if a.decl != nil {
		return a.decl, nil
	}
	d := &declarations{}
	if file := a.setting(a.configFile, envConfig, ""); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErrorf("--config: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err := dec.Decode(d); err != nil {
			return nil, usageErrorf("config %s: %w", file, err)
		}
	}
	a.decl = d
	return d, nil
}

// tables returns the sqldata declarations.
func (d *declarations) tables() ([]sqldata.Table, error) {
	out := make([]sqldata.Table, len(d.Tables))
	for i, t := range d.Tables {
		out[i] = t.Table
		out[i].Anonymise = nil
		for _, s := range t.Anonymise {
			set, err := s.set()
			if err != nil {
				return nil, usageErrorf("table %q: anonymise: %w", t.Name, err)
			}
			out[i].Anonymise = append(out[i].Anonymise, set)
		}
	}
	return out, nil
}

func (s setDecl) set() (sqldata.Set, error) {
	n := 0
	for _, given := range []bool{s.Null, s.Fixed != nil, s.ErasedAt} {
		if given {
			n++
		}
	}
	if s.Column == "" || n != 1 {
		return sqldata.Set{}, fmt.Errorf("column %q: want a column and one of \"null\": true, \"fixed\": VALUE or \"erasedAt\": true", s.Column)
	}
	switch {
	case s.Null:
		return sqldata.Null(s.Column), nil
	case s.ErasedAt:
		return sqldata.ErasedAt(s.Column), nil
	}
	v := s.Fixed
	if num, ok := v.(json.Number); ok {
		if i, err := num.Int64(); err == nil {
			v = i
		} else if f, err := num.Float64(); err == nil {
			v = f
		}
	}
	switch v.(type) {
	case string, int64, float64, bool:
		return sqldata.Fixed(s.Column, v), nil
	}
	return sqldata.Set{}, fmt.Errorf("column %q: a fixed value is a string, number or boolean", s.Column)
}

// policies builds the retention policies over their tables.
func (d *declarations) policies(ctx context.Context, st *sqlstore.Store) ([]retention.Policy, error) {
	var out []retention.Policy
	for _, p := range d.Retention {
		if p.Action == retention.NotifyThenErase {
			return nil, fmt.Errorf("retention policy %q: %s needs the application's Notifier; run it in the application", p.Name, p.Action)
		}
		age, err := parseAge(p.MaxAge)
		if err != nil {
			return nil, fmt.Errorf("retention policy %q: maxAge: %w", p.Name, err)
		}
		epoch, err := parseEpoch(p.Epoch)
		if err != nil {
			return nil, fmt.Errorf("retention policy %q: epoch: %w", p.Name, err)
		}
		target, err := sqltarget.New(ctx, st.DB(), st.Dialect(), sqltarget.Table{
			Name: p.Table, TimeColumn: p.TimeColumn, Epoch: epoch, SubjectColumn: p.SubjectColumn, Anonymise: p.Anonymise,
		})
		if err != nil {
			return nil, fmt.Errorf("retention policy %q: %w", p.Name, err)
		}
		out = append(out, retention.Policy{Name: p.Name, Target: target, MaxAge: age, Action: p.Action, BatchSize: p.BatchSize})
	}
	return out, nil
}

// parseAge reads a duration such as "90d" (days) or "36h" (Go's form).
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a positive number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as \"90d\" or \"36h\"", s)
	}
	return d, nil
}

// parseEpoch reads what an integer time column counts.
func parseEpoch(s string) (sqltarget.Epoch, error) {
	switch s {
	case "":
		return 0, nil
	case "seconds":
		return sqltarget.UnixSeconds, nil
	case "milliseconds":
		return sqltarget.UnixMilliseconds, nil
	case "microseconds":
		return sqltarget.UnixMicroseconds, nil
	case "nanoseconds":
		return sqltarget.UnixNanoseconds, nil
	}
	return 0, fmt.Errorf("%q is not seconds, milliseconds, microseconds or nanoseconds", s)
}
