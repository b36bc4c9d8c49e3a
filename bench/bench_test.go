package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"max", ms(hundred...), 100, 100 * time.Millisecond},
		{"min", ms(hundred...), 0, 1 * time.Millisecond},
		{"p50 of 4 is the 2nd", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 4 is the max", ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "1234 (ecsd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 0 0", 3 * time.Second, false},
		{"name with spaces and parens", "99 (a b) c) R 1 2 3 4 5 6 7 8 9 10 7 3 0 0", 100 * time.Millisecond, false},
		{"truncated", "99 (x) R 1 2 3", 0, true},
		{"no name", "garbage", 0, true},
		{"not numbers", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStatCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatusKB(t *testing.T) {
	t.Parallel()
	text := "Name:\tecsd\nVmHWM:\t  120000 kB\nVmRSS:\t   98304 kB\nThreads:\t12\n"
	tests := []struct {
		name string
		want int64
		ok   bool
	}{
		{"VmRSS", 98304, true},
		{"VmHWM", 120000, true},
		{"VmSwap", 0, false},
		{"Vm", 0, false},
	}
	for _, tt := range tests {
		got, ok := statusKB(text, tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("statusKB(%q) = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCommitStoreStampsOnlyCommittedInserts(t *testing.T) {
	t.Parallel()
	// The wrapper must stamp jobs inserted by a Write that committed, and
	// none from a Write that rolled back.
	st := &stamps{commit: map[string]time.Time{}, start: map[string]time.Time{}}
	cs := &commitStore{Store: fakeStore{}, st: st}
	ctx := t.Context()
	if err := cs.Write(ctx, func(tx store.Tx) error {
		return tx.JobInsert(ctx, &ecs.Job{ID: "committed"})
	}); err != nil {
		t.Fatal(err)
	}
	errRollback := errors.New("rollback")
	if err := cs.Write(ctx, func(tx store.Tx) error {
		if err := tx.JobInsert(ctx, &ecs.Job{ID: "rolled-back"}); err != nil {
			return err
		}
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatalf("Write = %v, want the fn's error", err)
	}
	if _, ok := st.get(st.commit, "committed"); !ok {
		t.Error("committed job has no commit stamp")
	}
	if _, ok := st.get(st.commit, "rolled-back"); ok {
		t.Error("rolled-back job has a commit stamp")
	}
}

// fakeStore runs Write's fn on a Tx whose JobInsert succeeds and returns
// fn's error, like a store that commits exactly when fn succeeds.
type fakeStore struct{ store.Store }

func (fakeStore) Write(ctx context.Context, fn func(tx store.Tx) error) error { return fn(fakeTx{}) }

type fakeTx struct{ store.Tx }

func (fakeTx) JobInsert(context.Context, *ecs.Job) error { return nil }
