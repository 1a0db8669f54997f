package lafake

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

const ws = "0b9d1a2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d"

var key = base64.StdEncoding.EncodeToString([]byte("k3y"))

// post signs like a client following the documentation, then lets mutate
// spoil one part.
func post(t *testing.T, d *DataCollector, body string, mutate func(*http.Request)) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.Endpoint(), strings.NewReader(body))
	date := time.Now().UTC().Format(http.TimeFormat)
	raw, _ := base64.StdEncoding.DecodeString(key)
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("POST\n" + strconv.Itoa(len(body)) + "\napplication/json\nx-ms-date:" + date + "\n/api/logs"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Log-Type", "MyType")
	req.Header.Set("x-ms-date", date)
	req.Header.Set("Authorization", "SharedKey "+ws+":"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	if mutate != nil {
		mutate(req)
	}
	resp, err := d.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestDataCollectorChecksLikeAzure(t *testing.T) {
	t.Parallel()
	d, err := NewDataCollector(ws, key, true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tests := []struct {
		name   string
		body   string
		mutate func(*http.Request)
		want   int
	}{
		{"documented signature", `[{"a":1}]`, nil, 200},
		{"charset in content type", `[{"a":1}]`, func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }, 403},
		{"date changed after signing", `[{"a":1}]`, func(r *http.Request) {
			r.Header.Set("x-ms-date", time.Now().Add(time.Second).UTC().Format(http.TimeFormat))
		}, 403},
		{"RFC1123 with UTC instead of GMT", `[{"a":1}]`, func(r *http.Request) {
			r.Header.Set("x-ms-date", time.Now().UTC().Format(time.RFC1123))
		}, 403},
		{"other workspace", `[{"a":1}]`, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ws, "other", 1))
		}, 403},
		{"bad log type", `[{"a":1}]`, func(r *http.Request) { r.Header.Set("Log-Type", "my-type") }, 400},
		{"reserved property", `[{"TimeGenerated":"2026-11-30T00:00:00Z"}]`, nil, 400},
		{"not an array", `{"a":1}`, nil, 400},
		{"time field missing", `[{"a":1}]`, func(r *http.Request) { r.Header.Set("time-generated-field", "EventTime") }, 400},
	}
	for _, tc := range tests {
		if got := post(t, d, tc.body, tc.mutate); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := d.RowCount("MyType"); n != 1 {
		t.Fatalf("%d rows accepted, want 1", n)
	}
}

func TestIngestionAuthorityAndLimits(t *testing.T) {
	t.Parallel()
	f := NewIngestion("dcr-1", []string{"Custom-T"}, true)
	defer f.Close()
	cred, err := f.Credential()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://monitor.azure.com//.default"}})
	if err != nil || !strings.HasPrefix(tok.Token, "fake-") {
		t.Fatalf("token %v %v", tok, err)
	}
	send := func(path, auth string, body []byte, gz bool) int {
		req, _ := http.NewRequest(http.MethodPost, f.URL+path+"?api-version=2023-01-01", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := f.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(`[{"a":1},{"a":2}]`))
	zw.Close()
	big := []byte(`["` + strings.Repeat("x", IngestionLimit) + `"]`)
	for _, tc := range []struct {
		name, path, auth string
		body             []byte
		gz               bool
		want             int
	}{
		{"gzip accepted", "/dataCollectionRules/dcr-1/streams/Custom-T", "Bearer " + tok.Token, zb.Bytes(), true, 204},
		{"unknown token", "/dataCollectionRules/dcr-1/streams/Custom-T", "Bearer nope", zb.Bytes(), true, 401},
		{"unknown rule", "/dataCollectionRules/dcr-2/streams/Custom-T", "Bearer " + tok.Token, zb.Bytes(), true, 404},
		{"undeclared stream", "/dataCollectionRules/dcr-1/streams/Custom-U", "Bearer " + tok.Token, zb.Bytes(), true, 400},
		{"over 1 MB", "/dataCollectionRules/dcr-1/streams/Custom-T", "Bearer " + tok.Token, big, false, 413},
	} {
		if got := send(tc.path, tc.auth, tc.body, tc.gz); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := f.RowCount("Custom-T"); n != 2 {
		t.Fatalf("%d rows", n)
	}

	bad, _ := azidentity.NewClientSecretCredential(f.Tenant, f.ClientID, "wrong", &azidentity.ClientSecretCredentialOptions{
		ClientOptions: *f.credentialOptions(), DisableInstanceDiscovery: true})
	_, err = bad.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://monitor.azure.com//.default"}})
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %v", err)
	}
}
