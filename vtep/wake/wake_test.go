package wake

import "testing"

func TestSignalCoalesces(t *testing.T) {
	s := New()
	select {
	case <-s:
		t.Fatal("a new signal is pending")
	default:
	}
	for range 3 {
		s.Notify() // never blocks
	}
	<-s
	select {
	case <-s:
		t.Fatal("three notifications woke the receiver twice")
	default:
	}
	s.Notify()
	var ro <-chan struct{} = s
	<-ro
}
