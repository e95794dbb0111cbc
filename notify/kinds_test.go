package notify_test

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/notifytest"
	"github.com/patchctl/patchctl/store"
)

// Every kind a producer can enqueue renders to a valid message; deploy and rollback
// outcomes name the host, the versions, the failed step and the cause.
func TestEveryOutboxKindRenders(t *testing.T) {
	samples := notifytest.Outbox()
	for _, kind := range notify.OutboxKinds() {
		t.Run(kind, func(t *testing.T) {
			e, ok := samples[kind]
			if !ok {
				t.Fatalf("no sample of %s in notifytest.Outbox: add one, with what its alert must say", kind)
			}
			payload, err := e.Encode()
			if err != nil {
				t.Fatal(err)
			}
			m, err := notify.Render(payload)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			text := notify.Format(m)
			for _, w := range notifytest.MustSay(e) {
				if !strings.Contains(text, w) {
					t.Errorf("the alert does not say %q:\n%s", w, text)
				}
			}
		})
	}
	for kind := range samples {
		if _, err := notify.Render([]byte(`{"kind":"` + kind + `"}`)); err == nil && kind != notify.OutboxTrackingStart {
			t.Errorf("%s with no content renders; it must say what is missing", kind)
		}
	}
}

func TestEnqueueRefuses(t *testing.T) {
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		name string
		e    notify.Envelope
		want error
	}{
		{"unknown kind", notify.Envelope{Kind: "deploy.exploded", Operation: &notify.Operation{Host: "h"}}, notify.ErrUnknownKind},
		{"no host", notify.Envelope{Kind: notify.OutboxDeployRolledBack, Operation: &notify.Operation{}}, nil},
		{"no release", notify.Envelope{Kind: notify.OutboxReleaseNew}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := st.Update(t.Context(), func(tx *store.Tx) error {
				_, err := notify.Enqueue(tx, "k:"+tc.name, tc.e)
				return err
			})
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Enqueue = %v, want an error (%v)", err, tc.want)
			}
		})
	}
	items, err := st.Outbox(t.Context(), false)
	if err != nil || len(items) != 0 {
		t.Fatalf("outbox after refusals: %v, %v", items, err)
	}
}

// Producers enqueue only through notify.Enqueue, so the kind registry sees every alert.
func TestOnlyNotifyEnqueues(t *testing.T) {
	root := filepath.Join("..")
	fset := token.NewFileSet()
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if dir := filepath.ToSlash(filepath.Dir(path)); dir == "../store" || dir == "../notify" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Enqueue" {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "notify" {
				bad = append(bad, fset.Position(sel.Pos()).String())
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("outbox entries queued around notify.Enqueue (no renderer check): %s", strings.Join(bad, ", "))
	}
}
