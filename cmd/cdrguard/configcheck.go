package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// runConfigCmd is `cdrguard config check FILE`: every check run makes at
// start (settings, rules against the windows, the hooks and console
// sections), without connecting to anything, then the effective
// configuration — the file over the defaults — with every secret
// redacted.
func runConfigCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fs := newFlagSet("config", "config check FILE", stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		return fmt.Errorf("%w: config check FILE", errUsage)
	}
	fs := newFlagSet("config check", "config check FILE", stderr)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: config check FILE", errUsage)
	}
	path := fs.Arg(0)
	cfg, err := loadRunConfig(path)
	if err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := loadRules(cfg); err != nil {
		return fmt.Errorf("config %s: detect.rules: %w", path, err)
	}
	if cfg.Hooks != nil {
		if _, _, err := cfg.Hooks.Resolve(cfg.Kafka.AlertsTopic); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	var doc yaml.Node
	doc.Kind = yaml.DocumentNode
	doc.Content = []*yaml.Node{configNode(reflect.ValueOf(cfg), "")}
	doc.HeadComment = "effective configuration of " + path + " (defaults filled in, secrets redacted)"
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stderr, "config %s: ok\n", path)
	return err
}

const redacted = "<redacted>"

var durationType = reflect.TypeFor[time.Duration]()

// configNode renders v as YAML the way the config file is written:
// yaml keys, durations as 30s, inline structs inlined, and secrets
// (password keys, a password in a DSN) redacted.
func configNode(v reflect.Value, key string) *yaml.Node {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == durationType:
		return scalar(shortDuration(time.Duration(v.Int())))
	case v.Kind() == reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		addStruct(n, v)
		return n
	case v.Kind() == reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			c := configNode(v.Index(i), key)
			if c.Kind != yaml.ScalarNode {
				n.Style = 0
			}
			n.Content = append(n.Content, c)
		}
		return n
	case v.Kind() == reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		iter := v.MapRange()
		for iter.Next() {
			n.Content = append(n.Content, scalar(fmt.Sprint(iter.Key().Interface())), configNode(iter.Value(), fmt.Sprint(iter.Key().Interface())))
		}
		return n
	case v.Kind() == reflect.String:
		s := v.String()
		switch {
		case s != "" && (key == "password" || strings.HasSuffix(key, "_password") || key == "secret" || key == "token"):
			s = redacted
		case key == "dsn":
			s = redactDSN(s)
		}
		n := scalar(s)
		n.Style = yaml.DoubleQuotedStyle
		return n
	default:
		var n yaml.Node
		_ = n.Encode(v.Interface())
		return &n
	}
}

func addStruct(n *yaml.Node, v reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			addStruct(n, v.Field(i))
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		n.Content = append(n.Content, scalar(name), configNode(v.Field(i), name))
	}
}

// shortDuration writes d as the config is written: 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

// redactDSN hides a password in a DSN's user info.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		return strings.Replace(u.String(), "xxxxx", redacted, 1)
	}
	return dsn
}
