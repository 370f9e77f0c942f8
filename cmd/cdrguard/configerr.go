package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlErrors rewrites the YAML decoder's errors in terms of config keys:
// "line 3: kafka.commit_interval: "soon" is not a duration (for example
// 30s or 5m)" rather than "cannot unmarshal !!str `soon` into
// time.Duration", and "kafka.topik is not a setting" rather than "field
// topik not found in type main.kafkaConfig". data is the file's content,
// parsed again to find the key on each reported line.
func yamlErrors(file string, data []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("config %s: %w", file, err)
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc)
	var msgs []string
	for _, e := range te.Errors {
		msgs = append(msgs, rewriteYAMLError(&doc, e))
	}
	return fmt.Errorf("config %s: %s", file, strings.Join(msgs, "; "))
}

var (
	reLine     = regexp.MustCompile(`^line (\d+): (.*)$`)
	reNotFound = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	reType     = regexp.MustCompile("^cannot unmarshal !!(\\w+) (?:`(.*)` )?into (\\S+)$")
)

func rewriteYAMLError(doc *yaml.Node, e string) string {
	m := reLine.FindStringSubmatch(e)
	if m == nil {
		return e
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	path := keyAt(doc, line)
	if nf := reNotFound.FindStringSubmatch(rest); nf != nil {
		parent := path
		if i := strings.LastIndexAny(parent, ".["); i >= 0 && strings.HasSuffix(parent, nf[1]) {
			parent = parent[:i]
		} else if parent == nf[1] {
			parent = ""
		}
		key := nf[1]
		if parent != "" {
			key = parent + "." + nf[1]
		}
		return fmt.Sprintf("line %d: %s is not a setting (unknown key; see the README's configuration reference)", line, key)
	}
	if ty := reType.FindStringSubmatch(rest); ty != nil {
		what := describeGoType(ty[3])
		if path == "" {
			path = "the file"
		}
		if ty[2] != "" {
			return fmt.Sprintf("line %d: %s: %q is not %s", line, path, ty[2], what)
		}
		return fmt.Sprintf("line %d: %s: a %s where %s is expected", line, path, yamlKind(ty[1]), what)
	}
	if path != "" {
		return fmt.Sprintf("line %d: %s: %s", line, path, rest)
	}
	return e
}

// describeGoType says in config words what a Go type takes.
func describeGoType(t string) string {
	switch {
	case t == "time.Duration":
		return "a duration (for example 30s or 5m)"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping (key: value lines)"
	default:
		return "a section (key: value lines)"
	}
}

func yamlKind(tag string) string {
	switch tag {
	case "seq":
		return "list"
	case "map":
		return "mapping"
	case "str":
		return "string"
	default:
		return tag
	}
}

// keyAt returns the dotted key path ("detect.windows[0].size") of the
// key or list item on line in doc, "" if none.
func keyAt(doc *yaml.Node, line int) string {
	var best string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if k.Line == line {
					best = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Line == line && best == "" {
					best = p
				}
				walk(c, p)
			}
		}
	}
	walk(doc, "")
	return best
}
