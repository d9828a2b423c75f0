package core

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-secrets/vigil/internal/jobs"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
)

// The core runs each mount's periodic work (logical.Periodic) as a job of
// one jobs.Scheduler, a subsystem started after the mounts and the leases
// and stopped before them. The jobs follow the routes: commitTable adds a
// job for a new backend and removes (waiting for its run in flight) the
// job of a backend that goes away, before the backend is cleaned up.

// mountJob names the job of the mount with the given UUID.
func mountJob(uuid string) string { return "mount/" + uuid }

func (c *Core) startJobs(ctx context.Context) error {
	s := jobs.New(jobs.Config{Clock: c.clk, Logger: c.cfg.Logger.With("component", "jobs")})
	if err := s.Start(ctx); err != nil {
		return err
	}
	for _, rt := range c.router.Routes() {
		if err := addMountJob(s, rt); err != nil {
			_ = s.Stop(ctx)
			return err
		}
	}
	c.sched.Store(s)
	return nil
}

func (c *Core) stopJobs(ctx context.Context) {
	if s := c.sched.Swap(nil); s != nil {
		if err := s.Stop(ctx); err != nil {
			c.log.Warn("stopping the jobs", "error", err)
		}
	}
}

// addMountJob schedules the periodic work of rt's backend, if it has any.
func addMountJob(s *jobs.Scheduler, rt *mount.Route) error {
	p, ok := rt.Backend.(logical.Periodic)
	if !ok {
		return nil
	}
	storage := rt.Storage
	err := s.Add(mountJob(rt.Entry.UUID), func(ctx context.Context) (time.Time, error) {
		return p.Periodic(ctx, storage)
	})
	if err != nil {
		return fmt.Errorf("schedule the periodic work of %q: %w", rt.Entry.Path, err)
	}
	return nil
}

// syncJobs brings the jobs in step with a change of routes from old to
// cur: the job of a backend that is gone (or replaced) is removed, which
// waits for its run in flight, and a new backend's job is added. It does
// nothing while the scheduler is not running (startJobs adds every
// route's job). The caller holds mountsMu.
func (c *Core) syncJobs(ctx context.Context, old, cur map[string]*mount.Route) {
	s := c.sched.Load()
	if s == nil {
		return
	}
	for path, rt := range old {
		if n := cur[path]; n != nil && n.Backend == rt.Backend {
			continue
		}
		if _, ok := rt.Backend.(logical.Periodic); ok {
			if err := s.Remove(ctx, mountJob(rt.Entry.UUID)); err != nil {
				c.log.Warn("stopping the periodic work of a mount", "mount_path", path, "error", err)
			}
		}
	}
	for path, rt := range cur {
		if o := old[path]; o != nil && o.Backend == rt.Backend {
			continue
		}
		if err := addMountJob(s, rt); err != nil {
			c.log.Error("the periodic work of a mount is not scheduled", "mount_path", path, "error", err)
		}
	}
}

// wakeMount is a mount's BackendConfig.Wake: a periodic run soon.
func (c *Core) wakeMount(uuid string) {
	if s := c.sched.Load(); s != nil {
		s.Wake(mountJob(uuid))
	}
}
