package meta_test

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/registry/meta"
)

// methods returns the method names of the interface type t.
func methods(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumMethod() {
		out[t.Method(i).Name] = true
	}
	return out
}

// Each consumer takes a narrow role; Store is nothing but their
// composition (and Close), as containerd composes content.Store.
func TestRoles(t *testing.T) {
	roles := map[string]reflect.Type{
		"Blobs":     reflect.TypeFor[meta.Blobs](),
		"Manifests": reflect.TypeFor[meta.Manifests](),
		"Uploads":   reflect.TypeFor[meta.Uploads](),
		"Collector": reflect.TypeFor[meta.Collector](),
	}
	union := map[string]bool{"Close": true}
	for name, r := range roles {
		if n := r.NumMethod(); n > 10 {
			t.Errorf("role %s has %d methods; split it", name, n)
		}
		for m := range methods(r) {
			union[m] = true
		}
	}
	if diff := cmp.Diff(union, methods(reflect.TypeFor[meta.Store]())); diff != "" {
		t.Errorf("Store is not the composition of the roles (-roles +Store):\n%s", diff)
	}
	api := methods(reflect.TypeFor[meta.API]())
	for m := range methods(roles["Collector"]) {
		if api[m] && m != "DeleteUpload" {
			t.Errorf("the API role reaches the collector's %s", m)
		}
	}
}
