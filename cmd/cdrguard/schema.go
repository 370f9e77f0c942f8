package main

import (
	"context"
	"fmt"
	"io"

	"github.com/cdrguard/cdrguard/schemas"
)

func runSchema(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("schema", "schema cdr|alert", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "cdr":
		_, err := stdout.Write(schemas.CDRSchemaJSON)
		return err
	case "alert":
		_, err := stdout.Write(schemas.AlertSchemaJSON)
		return err
	}
	fs.Usage()
	return fmt.Errorf("%w: name the schema: cdr or alert", errUsage)
}
