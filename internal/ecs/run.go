package ecs

import "context"

// JobRun names the run of a job on whose behalf work is done: the job's id
// and the run's lease token ("owner#attempt", see store.Lease.Token). The
// job engine puts it in the context of every run, so that what a run calls
// (a compute driver, a log line) can say which job and which attempt asked;
// nothing may depend on finding it.
type JobRun struct {
	JobID string
	Lease string
}

type jobRunKey struct{}

// WithJobRun returns ctx carrying r.
func WithJobRun(ctx context.Context, r JobRun) context.Context {
	return context.WithValue(ctx, jobRunKey{}, r)
}

// JobRunFrom returns the job run ctx carries, if any.
func JobRunFrom(ctx context.Context) (JobRun, bool) {
	r, ok := ctx.Value(jobRunKey{}).(JobRun)
	return r, ok
}
