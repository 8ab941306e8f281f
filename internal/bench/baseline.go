package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"daemoneye.dev/eventbus/stats"
)

// baselineBuffer is the raw writer's and reader's buffer size.
const baselineBuffer = 64 << 10

// runBaseline sends cfg.Msgs length-prefixed frames of cfg.Size bytes
// from one writer to one reader over a Unix socket, buffered, paced as
// cfg.Rate asks: the most a single hop could do on this machine.
func runBaseline(ctx context.Context, cfg Config) (Result, error) {
	dir, err := os.MkdirTemp("", "ebbase")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("unix", filepath.Join(dir, "base.sock"))
	if err != nil {
		return Result{}, err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	var d net.Dialer
	w, err := d.DialContext(ctx, "unix", ln.Addr().String())
	if err != nil {
		return Result{}, err
	}
	defer w.Close()
	r, ok := <-accepted
	if !ok {
		return Result{}, fmt.Errorf("accept failed")
	}
	defer r.Close()

	lat := stats.NewLatency()
	readDone := make(chan error, 1)
	go func() { readDone <- readFrames(r, cfg.Msgs, cfg.Size, lat) }()
	start := time.Now()
	if err := writeFrames(w, cfg); err != nil {
		return Result{}, err
	}
	select {
	case err := <-readDone:
		if err != nil {
			return Result{}, err
		}
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	return Result{Published: uint64(cfg.Msgs), Delivered: uint64(cfg.Msgs), Elapsed: time.Since(start), Latency: lat.Snapshot()}, nil
}

func writeFrames(c net.Conn, cfg Config) error {
	bw := bufio.NewWriterSize(c, baselineBuffer)
	frame := make([]byte, 4+cfg.Size)
	binary.BigEndian.PutUint32(frame, uint32(cfg.Size))
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Second / time.Duration(cfg.Rate)
	}
	var p *pacer
	if interval > 0 {
		p = newPacer()
		defer p.stop()
	}
	next := time.Now()
	for i := 0; i < cfg.Msgs; i++ {
		if p != nil {
			next = next.Add(interval)
			p.sleepUntil(next)
		}
		binary.BigEndian.PutUint64(frame[4:], uint64(time.Now().UnixNano()))
		if _, err := bw.Write(frame); err != nil {
			return err
		}
		if interval > 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

func readFrames(c net.Conn, n, size int, lat *stats.Latency) error {
	br := bufio.NewReaderSize(c, baselineBuffer)
	buf := make([]byte, 4+size)
	stamps := make([]int64, 0, 1024)
	for i := 0; i < n; i++ {
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("read frame %d: %w", i, err)
		}
		if got := int(binary.BigEndian.Uint32(buf)); got != size {
			return fmt.Errorf("frame %d: length %d, want %d", i, got, size)
		}
		stamps = append(stamps, time.Now().UnixNano()-int64(binary.BigEndian.Uint64(buf[4:])))
		if len(stamps) == cap(stamps) {
			lat.RecordMany(stamps)
			stamps = stamps[:0]
		}
	}
	lat.RecordMany(stamps)
	return nil
}
