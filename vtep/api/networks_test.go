package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/api/apitest"
)

// TestNetworksAPI: list, publish (pool VLAN), bad requests refused by the
// handler without reaching the backend, unpublish refused while VMs are
// attached (409 naming them), then done.
func TestNetworksAPI(t *testing.T) {
	fake := apitest.Sample()
	srv := httptest.NewServer(api.NewHandler(fake, nil, ""))
	defer srv.Close()
	c, err := api.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns, err := c.Networks(ctx)
	if err != nil || !ns.Configured || len(ns.Networks) != 3 {
		t.Fatalf("Networks: %+v, %v", ns, err)
	}
	n, err := c.Publish(ctx, api.PublishRequest{VNI: 10400, Name: "new"})
	if err != nil || n.VLAN != 3002 || n.State != api.NetworkReady {
		t.Fatalf("Publish: %+v, %v", n, err)
	}
	before := len(fake.Calls())
	for _, tc := range []struct {
		req  api.PublishRequest
		want string
	}{
		{api.PublishRequest{VNI: 0, Name: "x"}, "VNI 0 out of range"},
		{api.PublishRequest{VNI: 1, Name: ""}, "name missing"},
		{api.PublishRequest{VNI: 1, Name: "a/b"}, "not allowed"},
		{api.PublishRequest{VNI: 1, Name: "x", VLAN: 4095}, "VLAN 4095"},
	} {
		_, err := c.Publish(ctx, tc.req)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Publish(%+v) = %v, want 400 %q", tc.req, err, tc.want)
		}
	}
	if len(fake.Calls()) != before {
		t.Errorf("bad requests reached the backend: %v", fake.Calls()[before:])
	}
	err = c.Unpublish(ctx, api.UnpublishRequest{VNI: 10300})
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "web-1") {
		t.Fatalf("Unpublish attached: %v", err)
	}
	if err := c.Unpublish(ctx, api.UnpublishRequest{VNI: 10400}); err != nil {
		t.Fatalf("Unpublish: %v", err)
	}
}
