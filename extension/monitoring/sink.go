package monitoring

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/monitoring/spool"
)

const (
	kindLogs    = "logs"
	kindMetrics = "metrics"
)

// uploader sends one batch (a JSON array of rows) to a destination.
type uploader interface {
	name() string
	timeField() string // name of the time column in rows
	maxBatch() int     // bytes per batch
	upload(ctx context.Context, kind string, body []byte) error
}

// SinkStats are the counters of one destination.
type SinkStats struct {
	Destination     string
	RowsUploaded    map[string]uint64 // by kind
	BatchesUploaded uint64
	UploadFailures  uint64 // failed rounds (the batch stays spooled)
	RowsRejected    uint64 // rows in batches refused for good (4xx)
	RowsEvicted     uint64 // rows deleted from a full spool
	RowsTooLarge    uint64 // single rows larger than a batch
	SpoolBytes      int64
	SpoolBatches    int
}

// pending is a batch being filled in memory.
type pending struct {
	buf  []byte
	rows int
	// lastSeq is the highest record sequence in buf (logs only).
	firstSeq, lastSeq uint64
}

// sink batches rows for one destination, spools sealed batches and uploads
// them oldest first. add/flush are called by the ingest goroutine only;
// run is the upload goroutine.
type sink struct {
	up    uploader
	spool *spool.Spool
	log   zerolog.Logger
	kick  chan struct{}

	logs, metrics pending

	rowsUploaded  [2]atomic.Uint64 // logs, metrics
	batches       atomic.Uint64
	failures      atomic.Uint64
	rejected      atomic.Uint64
	evicted       atomic.Uint64
	tooLarge      atomic.Uint64
	retryInterval time.Duration
}

func newSink(up uploader, sp *spool.Spool, log zerolog.Logger, retry time.Duration) *sink {
	return &sink{up: up, spool: sp, log: log.With().Str("destination", up.name()).Logger(),
		kick: make(chan struct{}, 1), retryInterval: retry}
}

func (s *sink) pendingFor(kind string) *pending {
	if kind == kindMetrics {
		return &s.metrics
	}
	return &s.logs
}

// addRow appends one encoded row (from appendRow, which writes into the
// pending buffer directly). Oversized batches are sealed first.
func (s *sink) addRow(kind string, seq uint64, appendRow func([]byte) []byte) {
	p := s.pendingFor(kind)
	start := len(p.buf)
	if start == 0 {
		p.buf = append(p.buf, '[')
	} else {
		p.buf = append(p.buf, ',')
	}
	p.buf = appendRow(p.buf)
	rowLen := len(p.buf) - start
	limit := s.batchLimit()
	if len(p.buf)+1 > limit { // +1 for the closing bracket
		row := append([]byte(nil), p.buf[start+1:]...)
		p.buf = p.buf[:start]
		if rowLen+2 > limit {
			s.tooLarge.Add(1)
			s.log.Warn().Int("bytes", rowLen).Int("limit", limit).Msg("row larger than a batch dropped")
			return
		}
		s.seal(kind)
		p.buf = append(p.buf, '[')
		p.buf = append(p.buf, row...)
	}
	if p.rows == 0 {
		p.firstSeq = seq
	}
	p.rows++
	p.lastSeq = seq
}

// batchLimit is the destination's batch size, but at most a quarter of the
// spool, so a full spool still holds several batches and evicts the oldest
// instead of refusing the newest.
func (s *sink) batchLimit() int {
	return int(min(int64(s.up.maxBatch()), s.spool.Max()/4))
}

// seal writes the pending batch of kind to the spool.
func (s *sink) seal(kind string) {
	p := s.pendingFor(kind)
	if p.rows == 0 {
		p.buf = p.buf[:0]
		return
	}
	p.buf = append(p.buf, ']')
	ev, err := s.spool.Append(kind, p.rows, p.buf)
	if err != nil {
		// Disk full or unwritable: the rows cannot be kept.
		s.evicted.Add(uint64(p.rows))
		s.log.Error().Err(err).Int("rows", p.rows).Msg("cannot spool batch; rows lost")
	}
	if ev.Rows > 0 {
		s.evicted.Add(uint64(ev.Rows))
		s.log.Warn().Int("rows", ev.Rows).Int("batches", ev.Batches).Int64("bytes", ev.Bytes).
			Int64("spoolLimit", s.spool.Max()).Msg("spool full: oldest rows deleted before upload")
	}
	// Keep the buffer's memory for the next batch unless it grew large.
	if cap(p.buf) > 2*s.batchLimit() {
		p.buf = nil
	} else {
		p.buf = p.buf[:0]
	}
	p.rows = 0
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flush seals both pending batches.
func (s *sink) flush() {
	s.seal(kindLogs)
	s.seal(kindMetrics)
}

// safeThrough is the highest record sequence whose log row is spooled,
// given that last is the highest read; ok is false with nothing pending.
func (s *sink) safeThrough(last uint64) uint64 {
	if s.logs.rows == 0 {
		return last
	}
	return s.logs.firstSeq - 1
}

// run uploads spooled batches whenever one is sealed, and retries failed
// ones every retryInterval, until stop is closed (between uploads) or ctx
// is done (which also cancels an upload in flight).
func (s *sink) run(ctx context.Context, stop <-chan struct{}) {
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-s.kick:
		case <-retry:
		}
		retry = nil
		if err := s.drain(ctx); err != nil && ctx.Err() == nil {
			retry = time.After(s.retryInterval)
		}
	}
}

// drain uploads batches oldest first until the spool is empty or one fails.
func (s *sink) drain(ctx context.Context) error {
	for ctx.Err() == nil {
		b, ok := s.spool.Oldest()
		if !ok {
			return nil
		}
		body, err := s.spool.Read(b)
		if err != nil {
			// Evicted meanwhile, or unreadable: nothing to send.
			s.log.Warn().Err(err).Msg("spooled batch unreadable; skipped")
			_ = s.spool.Remove(b)
			continue
		}
		err = s.up.upload(ctx, b.Kind, body)
		var ue *UploadError
		switch {
		case err == nil:
			_ = s.spool.Remove(b)
			s.batches.Add(1)
			s.rowsUploaded[kindIndex(b.Kind)].Add(uint64(b.Rows))
		case errors.As(err, &ue) && ue.Permanent:
			_ = s.spool.Remove(b)
			s.rejected.Add(uint64(b.Rows))
			s.log.Error().Err(err).Str("kind", b.Kind).Int("rows", b.Rows).Msg("batch rejected; dropped")
		default:
			s.spool.Release(b)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.failures.Add(1)
			s.log.Warn().Err(err).Str("kind", b.Kind).Int("spooledBatches", s.spool.Len()).
				Int64("spooledBytes", s.spool.Bytes()).Msg("upload failed; batch kept for retry")
			return err
		}
	}
	return ctx.Err()
}

func kindIndex(kind string) int {
	if kind == kindMetrics {
		return 1
	}
	return 0
}

func (s *sink) stats() SinkStats {
	return SinkStats{
		Destination:     s.up.name(),
		RowsUploaded:    map[string]uint64{kindLogs: s.rowsUploaded[0].Load(), kindMetrics: s.rowsUploaded[1].Load()},
		BatchesUploaded: s.batches.Load(),
		UploadFailures:  s.failures.Load(),
		RowsRejected:    s.rejected.Load(),
		RowsEvicted:     s.evicted.Load(),
		RowsTooLarge:    s.tooLarge.Load(),
		SpoolBytes:      s.spool.Bytes(),
		SpoolBatches:    s.spool.Len(),
	}
}
