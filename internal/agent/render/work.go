package render

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/template"
)

// work is what the loop hands its worker goroutine at once: leases to
// renew and templates to render, which need the server and may take a
// while. The worker fills in the results and hands it back; it touches
// nothing else of the loop's.
type work struct {
	renewals []*renewal
	renders  []*rendering
}

type renewal struct {
	key string
	dep template.Dependency
	// Results.
	granted   time.Duration
	renewable bool
	err       error
}

type rendering struct {
	u    *unit
	tmpl *template.Template
	// Results.
	res *template.Result
	err error
}

// do renews and renders, at most parallel at a time.
func (r *Runner) do(ctx context.Context, w *work) {
	sem := make(chan struct{}, r.parallel)
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f()
		}()
	}
	for _, rn := range w.renewals {
		run(func() {
			// Ask for as long again as the lease was granted for.
			sec, err := r.o.Client.Sys().LeaseRenew(ctx, rn.dep.LeaseID, rn.dep.LeaseDuration)
			switch {
			case err != nil:
				rn.err = err
			case sec == nil:
				rn.err = errors.New("the server answered the renewal with nothing")
			default:
				rn.granted = time.Duration(sec.LeaseDuration) * time.Second
				rn.renewable = sec.Renewable
			}
		})
	}
	for _, rd := range w.renders {
		run(func() { rd.res, rd.err = rd.tmpl.Render(ctx, r.cache) })
	}
	wg.Wait()
}

// serverFailure reports whether a render failed for want of an answer
// from the server (it could not be reached, answered with an error, or
// has no secret there): asking again later may mend it. Any other render
// error is the template's own (a function failing, a missing key with
// error_on_missing_key, a rendering too large).
func serverFailure(err error) bool {
	var re *api.ResponseError
	var ue *url.Error
	var ne net.Error
	return errors.Is(err, template.ErrNotFound) || errors.As(err, &re) || errors.As(err, &ue) || errors.As(err, &ne)
}
