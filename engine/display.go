package engine

import (
	"context"
	"io"
	"sync"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
)

// sharedDisplay is one progressui display fed by every solve that runs while it is
// open. In tty mode a display owns a region of the terminal that it redraws in
// place, so two displays at once (two layers or architectures building in
// parallel) overwrite each other's lines; one display showing the vertices of all
// running solves does not. It opens with the first solve and closes (printing its
// final state) when the last one running ends.
type sharedDisplay struct {
	out  io.Writer
	mode progressui.DisplayMode

	mu    sync.Mutex
	cur   *openDisplay // nil when no display is open
	prev  *openDisplay // the last one closed, whose final redraw may still be going on
	users int
}

type openDisplay struct {
	ch       chan *client.SolveStatus
	finished chan struct{} // closed when the display has drawn its last
	err      error         // set before finished closes
}

// attach returns the channel a solve sends its statuses to, and detach, which the
// solve calls once it has sent its last status. The last solve to detach waits
// for the display to finish and gets its error; the others get nil.
func (s *sharedDisplay) attach() (chan<- *client.SolveStatus, func() error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		if s.prev != nil {
			<-s.prev.finished // its final redraw comes before a new display's first
		}
		d, err := progressui.NewDisplay(s.out, s.mode)
		if err != nil {
			return nil, nil, err
		}
		od := &openDisplay{ch: make(chan *client.SolveStatus), finished: make(chan struct{})}
		go func() {
			_, od.err = d.UpdateFrom(context.Background(), od.ch)
			for range od.ch { // in case the display stopped early: senders never block
			}
			close(od.finished)
		}()
		s.cur = od
	}
	s.users++
	od := s.cur
	detach := func() error {
		s.mu.Lock()
		s.users--
		last := s.users == 0
		if last {
			close(od.ch)
			s.cur, s.prev = nil, od
		}
		s.mu.Unlock()
		if !last {
			return nil
		}
		// Wait for the final redraw before anything else writes to the terminal.
		<-od.finished
		return od.err
	}
	return od.ch, detach, nil
}
