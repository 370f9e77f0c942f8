package clickhouse

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/template"

	chschema "github.com/cdrguard/cdrguard/schemas/clickhouse"
)

// Migration is one rendered migration: the statements of one
// migrations/NNN_name.sql file for one server.
type Migration struct {
	// Version is NNN.
	Version uint32
	// Name is the file name without .sql, e.g. "001_alerts".
	Name string
	// Statements are the rendered statements, in order, without their
	// trailing semicolons.
	Statements []string
}

// Plan is the DDL Migrate runs for one server: the bootstrap (database and
// migrations table, run every time) and every migration (run once).
type Plan struct {
	Bootstrap  []string
	Migrations []Migration
}

// templateData is what the migration templates see.
type templateData struct {
	Database         string
	Cluster          string
	CDRRetentionDays int
	Features
}

// Render renders the migrations for a server of version v with the
// options' database, cluster and CDR retention. It does not connect: use
// it to review the DDL a server would get (cdrguard migrate --print).
func Render(opts Options, v Version) (*Plan, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	data := templateData{
		Database:         opts.Database,
		Cluster:          opts.Cluster,
		CDRRetentionDays: opts.CDRRetentionDays,
		Features:         FeaturesFor(v),
	}
	p := &Plan{}
	var err error
	if p.Bootstrap, err = renderStatements("bootstrap.sql", chschema.Bootstrap, &data); err != nil {
		return nil, err
	}
	names, err := fs.Glob(chschema.Migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("cannot list migrations: %w", err)
	}
	slices.Sort(names)
	seen := map[uint32]string{}
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, _, ok := strings.Cut(base, "_")
		ver, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || len(num) != 3 || ver == 0 {
			return nil, fmt.Errorf("migration file %s is not named NNN_name.sql with NNN from 001", name)
		}
		if prev, dup := seen[uint32(ver)]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", prev, name, ver)
		}
		seen[uint32(ver)] = name
		text, err := fs.ReadFile(chschema.Migrations, name)
		if err != nil {
			return nil, fmt.Errorf("cannot read migration %s: %w", name, err)
		}
		stmts, err := renderStatements(name, string(text), &data)
		if err != nil {
			return nil, err
		}
		p.Migrations = append(p.Migrations, Migration{Version: uint32(ver), Name: base, Statements: stmts})
	}
	return p, nil
}

// renderStatements executes one template and splits the result into
// statements.
func renderStatements(name, text string, data *templateData) ([]string, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs(data)).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("cannot parse migration template %s: %w", name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("cannot render migration template %s: %w", name, err)
	}
	stmts := splitStatements(b.String())
	if len(stmts) == 0 {
		return nil, fmt.Errorf("migration template %s has no statement", name)
	}
	return stmts, nil
}

// splitStatements cuts SQL text into statements at semicolons that end a
// line, dropping whole-line "--" comments and blank lines.
func splitStatements(sql string) []string {
	var stmts []string
	var cur []string
	flush := func() {
		if s := strings.TrimSpace(strings.Join(cur, "\n")); s != "" {
			stmts = append(stmts, s)
		}
		cur = cur[:0]
	}
	for line := range strings.SplitSeq(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		line = strings.TrimRight(line, " \t\r")
		if strings.HasSuffix(line, ";") {
			cur = append(cur, strings.TrimSuffix(line, ";"))
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return stmts
}

// templateFuncs are the functions the migration templates call; see the
// schemas/clickhouse package documentation.
func templateFuncs(d *templateData) template.FuncMap {
	engine := func(kind, table, args string, sharded bool) string {
		if d.Cluster == "" {
			return kind + "(" + args + ")"
		}
		zkPath := "/clickhouse/tables/{shard}/{database}/" + table
		if !sharded {
			zkPath = "/clickhouse/tables/cdrguard/{database}/" + table
		}
		a := "'" + zkPath + "', '{replica}'"
		if args != "" {
			a += ", " + args
		}
		return "Replicated" + kind + "(" + a + ")"
	}
	return template.FuncMap{
		"onCluster": func() string {
			if d.Cluster == "" {
				return ""
			}
			return " ON CLUSTER " + d.Cluster
		},
		"lc": func() string {
			if d.LowCardinality {
				return "LowCardinality(String)"
			}
			return "String"
		},
		"codec": func(c string) string {
			if !d.Codecs {
				return ""
			}
			return " CODEC(" + c + ")"
		},
		"engine": func(kind, table, args string) string {
			return engine(kind, table, args, true)
		},
		"sharedEngine": func(kind, table, args string) string {
			return engine(kind, table, args, false)
		},
		"addColumn": func(table, def string) string {
			s := "ALTER TABLE " + d.Database + "." + table
			if d.Cluster != "" {
				s += " ON CLUSTER " + d.Cluster
			}
			if d.AddColumnIfNotExists {
				return s + " ADD COLUMN IF NOT EXISTS " + def
			}
			return s + " ADD COLUMN " + def
		},
	}
}
