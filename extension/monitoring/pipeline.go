// Package monitoring is the agent's telemetry pipeline: it reads the
// gateway's request-log records on loopback (GET /telemetry/logs, by
// sequence number), aggregates them every minute into rows shaped like Log
// Analytics' AzureMetrics, spools logs and metrics in a bounded on-disk
// buffer and uploads them to Log Analytics through the HTTP Data Collector
// API (SharedKey) and/or the Logs Ingestion API (azlogs, Entra), and
// exports the same metrics over OTLP.
//
// Delivery is at least once: a batch leaves the spool only after the
// destination accepted it. Every log row carries RecordId = <gateway
// epoch>-<sequence>, and every metric row a RecordId derived from what it
// aggregates, so duplicates (after an outage or a restart) can be removed
// with `summarize arg_max(TimeGenerated, *) by RecordId`.
package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/monitoring/spool"
)

// Deps are the pipeline's collaborators.
type Deps struct {
	// Logger receives the pipeline's logs; it adds component=monitoring,
	// so pass one without a component field (zerolog keeps duplicates).
	Logger zerolog.Logger
	// Credential is the agent's Entra credential, required for the Logs
	// Ingestion API.
	Credential azcore.TokenCredential
	// IngestionOptions are the azlogs client options (transport, retries,
	// proxy); nil for the defaults. Leave Cloud unset.
	IngestionOptions *azcore.ClientOptions
	// DataCollectorClient sends Data Collector requests (nil: a pooled
	// client); retries wrap it.
	DataCollectorClient *http.Client
	// GatewayClient reads the gateway's telemetry (nil: 10s timeout).
	GatewayClient *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Pipeline reads, aggregates, spools and uploads. Create it with New and
// call Run once; Stats and WriteMetrics may be called concurrently. Its
// state lives on disk (spool, read position), so applying changed settings
// is: cancel Run, wait for it to return, New with the new Config, Run.
// Two pipelines must never share a spool folder at the same time.
type Pipeline struct {
	cfg   Config
	log   zerolog.Logger
	now   func() time.Time
	gw    *http.Client
	sinks []*sink
	agg   *aggregator
	otel  *otelExporter
	sd    *statsdSender

	// Read position; used by the ingest goroutine only.
	epoch, epochEsc string
	after           uint64 // next request's after
	logsAfter       uint64 // records up to this were spooled as logs before a restart
	lastSeq         uint64
	cursorSaved     cursor
	cursorAt        time.Time
	pg              page
	rec             record
	minutes         minuteCache
	body            bytes.Buffer

	recordsRead  atomic.Uint64
	recordsLost  atomic.Uint64
	pollErrors   atomic.Uint64
	badRecords   atomic.Uint64
	epochChanges atomic.Uint64
	seriesDrop   atomic.Uint64
}

// New validates cfg and builds the pipeline; it opens the spool (picking
// up batches a previous process left) but starts nothing.
func New(cfg Config, deps Deps) (*Pipeline, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, log: deps.Logger.With().Str("component", "monitoring").Logger(), now: deps.Now, gw: deps.GatewayClient}
	if p.now == nil {
		p.now = time.Now
	}
	if p.gw == nil {
		p.gw = &http.Client{Timeout: 10 * time.Second}
	}
	p.agg = newAggregator(cfg.CustomResourceID, cfg.MaxSeriesPerMinute)

	var ups []uploader
	if cfg.DataCollectorEnabled() {
		dc, err := newDataCollector(&cfg, deps.DataCollectorClient, p.log, p.now)
		if err != nil {
			return nil, err
		}
		ups = append(ups, dc)
	}
	if cfg.LogsIngestionEnabled() {
		li, err := newLogsIngestion(&cfg, deps.Credential, deps.IngestionOptions)
		if err != nil {
			return nil, err
		}
		ups = append(ups, li)
	}
	for _, up := range ups {
		// The destinations share the spool size.
		sp, err := spool.Open(filepath.Join(cfg.SpoolDir, up.name()), cfg.SpoolBytes/int64(len(ups)))
		if err != nil {
			return nil, err
		}
		retry := min(cfg.UploadInterval, 30*time.Second)
		p.sinks = append(p.sinks, newSink(up, sp, p.log, retry))
	}
	if cfg.OTLP.Enabled {
		o, err := newOTelExporter(cfg.OTLP, cfg.CustomResourceID)
		if err != nil {
			return nil, err
		}
		p.otel = o
	}
	if cfg.StatsD != nil {
		sd, err := newStatsD(*cfg.StatsD)
		if err != nil {
			return nil, err
		}
		p.sd = sd
	}
	if len(p.sinks) > 0 {
		c, err := loadCursor(p.cursorPath())
		if err != nil {
			p.log.Warn().Err(err).Msg("read position unreadable; starting from the gateway's oldest record")
		}
		p.epoch, p.epochEsc, p.after, p.logsAfter = c.Epoch, jsonEscape(c.Epoch), c.MetricsAfter, c.LogsAfter
		p.agg.epoch = c.Epoch
		p.cursorSaved = c
	}
	return p, nil
}

// Run reads and uploads until ctx is done, then closes the open minutes,
// spools everything read and tries a last upload within ShutdownTimeout.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.cfg.Enabled() {
		// Nothing to upload or export: do not read the gateway at all.
		p.log.Info().Msg("monitoring disabled: no Log Analytics destination, OpenTelemetry collector or StatsD endpoint configured")
		<-ctx.Done()
		return nil
	}
	// Uploads outlive ctx a little: cancelling one mid-request would send
	// its batch twice (the service may have stored it already).
	upCtx, cancelUploads := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelUploads()
	stopUploads := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range p.sinks {
		s.kick <- struct{}{} // batches left by a previous process
		wg.Go(func() { s.run(upCtx, stopUploads) })
	}
	p.log.Info().Int("destinations", len(p.sinks)).Bool("otlp", p.otel != nil).Bool("statsd", p.sd != nil).Str("gateway", p.cfg.GatewayTelemetryURL).
		Dur("uploadInterval", p.cfg.UploadInterval).Int64("spoolBytes", p.cfg.SpoolBytes).Msg("monitoring started")

	nextFlush := p.now().Add(p.cfg.UploadInterval)
	var lastPollErr time.Time
	for ctx.Err() == nil {
		more, err := p.poll(ctx)
		if err != nil && ctx.Err() == nil {
			p.pollErrors.Add(1)
			// The gateway may be starting or restarting: say so once a minute.
			if p.now().Sub(lastPollErr) > time.Minute {
				p.log.Warn().Err(err).Msg("cannot read gateway telemetry; retrying")
				lastPollErr = p.now()
			}
		}
		now := p.now()
		p.agg.closeBefore(now.Add(-p.cfg.MetricsDelay), p.emitMetrics)
		if !now.Before(nextFlush) {
			for _, s := range p.sinks {
				s.flush()
			}
			nextFlush = now.Add(p.cfg.UploadInterval)
		}
		p.saveCursor(false)
		if more {
			continue
		}
		wait := min(p.cfg.PollInterval, max(nextFlush.Sub(now), time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}

	// Shutdown: nothing read may stay in memory only.
	p.agg.closeAll(p.emitMetrics)
	for _, s := range p.sinks {
		s.flush()
	}
	p.saveCursor(true)
	// Let an upload in flight finish, within the shutdown timeout.
	close(stopUploads)
	deadline := time.AfterFunc(p.cfg.ShutdownTimeout, cancelUploads)
	wg.Wait()
	deadline.Stop()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range p.sinks {
		if err := s.drain(fctx); err != nil {
			p.log.Warn().Err(err).Str("destination", s.up.name()).Int("spooledBatches", s.spool.Len()).
				Msg("batches left in the spool for the next start")
		}
	}
	if p.sd != nil {
		_ = p.sd.close()
	}
	if p.otel != nil {
		if err := p.otel.shutdown(fctx); err != nil {
			p.log.Warn().Err(err).Msg("final OTLP export failed")
		}
	}
	p.log.Info().Msg("monitoring stopped")
	return nil
}

// poll reads one page; more reports that the gateway has more records now.
func (p *Pipeline) poll(ctx context.Context) (more bool, err error) {
	u := strings.TrimSuffix(p.cfg.GatewayTelemetryURL, "/") + "/telemetry/logs?after=" +
		strconv.FormatUint(p.after, 10) + "&limit=" + strconv.Itoa(p.cfg.PageSize)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := p.gw.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("gateway telemetry: status %d", resp.StatusCode)
	}
	p.body.Reset()
	// 10000 records of a few KB each at most; the cap stops a broken peer.
	if _, err := p.body.ReadFrom(io.LimitReader(resp.Body, 256<<20)); err != nil {
		return false, fmt.Errorf("gateway telemetry: %w", err)
	}
	if err := decodePage(p.body.Bytes(), &p.pg); err != nil {
		return false, fmt.Errorf("gateway telemetry: %w", err)
	}
	pg := &p.pg
	if pg.Epoch == "" {
		return false, errors.New("gateway telemetry: answer without epoch")
	}
	if pg.Epoch != p.epoch {
		// A new gateway process (or the first read): its sequence starts
		// at 1, so read it from the start.
		known := p.epoch != ""
		p.switchEpoch(pg.Epoch)
		if known {
			p.epochChanges.Add(1)
			p.log.Info().Str("epoch", pg.Epoch).Msg("gateway restarted; reading its records from the start")
			return true, nil
		}
		if p.after != 0 {
			return true, nil
		}
	}
	if pg.Lost > 0 {
		// Records the ring overwrote before we read them; those already
		// spooled before an agent restart were not lost.
		lost := pg.Lost
		if pg.First > 0 && p.logsAfter > p.after {
			gapEnd := pg.First - 1
			lost = 0
			if gapEnd > p.logsAfter {
				lost = gapEnd - p.logsAfter
			}
		}
		if lost > 0 {
			p.recordsLost.Add(lost)
			p.log.Warn().Uint64("records", lost).Msg("gateway overwrote request logs before they were read (raise --request-log-buffer or check the agent)")
		}
	}
	for _, raw := range pg.Records {
		p.rec = record{}
		if err := decodeRecord(raw, &p.rec); err != nil {
			p.badRecords.Add(1)
			continue
		}
		seq := p.rec.Sequence
		if seq <= p.after && seq != 0 {
			continue // defensive: already read
		}
		p.recordsRead.Add(1)
		minute := p.minutes.minuteOf(p.rec.TimeGenerated, p.now())
		p.agg.add(&p.rec, minute)
		if p.otel != nil {
			p.otel.record(&p.rec)
		}
		if p.sd != nil {
			p.sd.record(&p.rec)
		}
		if seq > p.logsAfter || seq == 0 {
			for _, s := range p.sinks {
				tf := s.up.timeField()
				s.addRow(kindLogs, seq, func(b []byte) []byte { return appendLogRow(b, raw, p.epochEsc, seq, tf) })
			}
		}
		p.lastSeq = max(p.lastSeq, seq)
	}
	if p.sd != nil {
		p.sd.flush()
	}
	if d := p.agg.dropped; d > 0 {
		p.agg.dropped = 0
		p.seriesDrop.Add(d)
	}
	// The gateway's next is authoritative; it is 0 when after was beyond
	// its newest record.
	p.after = pg.Next
	return len(pg.Records) >= p.cfg.PageSize, nil
}

// switchEpoch closes everything of the previous gateway process.
func (p *Pipeline) switchEpoch(epoch string) {
	p.agg.closeAll(p.emitMetrics)
	for _, s := range p.sinks {
		s.flush()
	}
	p.epoch, p.epochEsc = epoch, jsonEscape(epoch)
	p.agg.epoch = epoch
	p.after, p.logsAfter, p.lastSeq = 0, 0, 0
	p.saveCursor(true)
}

// emitMetrics spools the rows of closed minutes at once, so the read
// position may move past the records they aggregate.
func (p *Pipeline) emitMetrics(rows []MetricRow) {
	for _, s := range p.sinks {
		tf := s.up.timeField()
		for i := range rows {
			s.addRow(kindMetrics, 0, func(b []byte) []byte { return appendMetricRow(b, &rows[i], tf) })
		}
		s.seal(kindMetrics)
	}
}

// cursor is the read position kept across agent restarts.
type cursor struct {
	Epoch string `json:"epoch"`
	// LogsAfter: every record up to it is spooled as a log row.
	LogsAfter uint64 `json:"logsAfter"`
	// MetricsAfter: every record up to it is in a spooled metric row.
	MetricsAfter uint64 `json:"metricsAfter"`
}

func (p *Pipeline) cursorPath() string { return filepath.Join(p.cfg.SpoolDir, "position.json") }

func loadCursor(path string) (cursor, error) {
	var c cursor
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return cursor{}, fmt.Errorf("%s: %w", path, err)
	}
	c.MetricsAfter = min(c.MetricsAfter, c.LogsAfter)
	return c, nil
}

// saveCursor writes the position at most once a second unless forced.
func (p *Pipeline) saveCursor(force bool) {
	if len(p.sinks) == 0 || p.epoch == "" {
		return
	}
	now := p.now()
	if !force && now.Sub(p.cursorAt) < time.Second {
		return
	}
	read := max(p.lastSeq, p.logsAfter)
	c := cursor{Epoch: p.epoch, LogsAfter: read}
	for _, s := range p.sinks {
		c.LogsAfter = min(c.LogsAfter, max(s.safeThrough(read), p.logsAfter))
	}
	c.MetricsAfter = c.LogsAfter
	if m, ok := p.agg.safeThrough(); ok {
		c.MetricsAfter = min(c.MetricsAfter, m)
	}
	if c == p.cursorSaved {
		return
	}
	b, _ := json.Marshal(c)
	tmp := p.cursorPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		err = os.Rename(tmp, p.cursorPath())
		if err != nil {
			p.log.Warn().Err(err).Msg("cannot save read position")
		}
	}
	p.cursorSaved, p.cursorAt = c, now
}
