package configsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// GatewayStatus is the gateway's answer to GET /telemetry/status (the
// telemetry contract between apim-gateway and the agent).
type GatewayStatus struct {
	Epoch                 string `json:"epoch"`
	ConfigurationRevision string `json:"configurationRevision"`
	LoadedAt              string `json:"loadedAt"`
	Ready                 bool   `json:"ready"`
	Version               string `json:"version"`
}

// GatewayStatusSource tells which configuration the gateway has loaded.
type GatewayStatusSource interface {
	Status(ctx context.Context) (GatewayStatus, error)
}

// GatewayProbe reads the status of the gateway in the same pod from its
// telemetry listener (--gateway-telemetry, default http://127.0.0.1:9090).
type GatewayProbe struct {
	base string
	http *http.Client
}

// NewGatewayProbe checks base (an absolute http(s) URL) and returns a
// probe with a short timeout: a gateway that does not answer within it is
// reported unreachable.
func NewGatewayProbe(base string) (*GatewayProbe, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--gateway-telemetry %q: want an absolute http URL such as http://127.0.0.1:9090", base)
	}
	// The gateway is on loopback: never through a proxy.
	t := &http.Transport{Proxy: nil, MaxIdleConns: 2, IdleConnTimeout: 2 * time.Minute}
	return &GatewayProbe{base: strings.TrimRight(u.String(), "/"), http: &http.Client{Transport: t, Timeout: 5 * time.Second}}, nil
}

// Status implements GatewayStatusSource.
func (p *GatewayProbe) Status(ctx context.Context) (GatewayStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/telemetry/status", nil)
	if err != nil {
		return GatewayStatus{}, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return GatewayStatus{}, fmt.Errorf("gateway status: %w", err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return GatewayStatus{}, fmt.Errorf("gateway status: %s answered %d", p.base, resp.StatusCode)
	}
	var st GatewayStatus
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return GatewayStatus{}, fmt.Errorf("gateway status: %w", err)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return GatewayStatus{}, fmt.Errorf("gateway status: %w", err)
	}
	if st.Epoch == "" {
		return GatewayStatus{}, errors.New("gateway status: answer lacks the epoch")
	}
	return st, nil
}
