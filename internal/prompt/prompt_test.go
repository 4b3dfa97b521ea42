package prompt

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/AlecAivazis/survey/v2/terminal"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"echo", []string{"echo"}},
		{"fetch-page, search.v2,add_numbers", []string{"fetch-page", "search.v2", "add_numbers"}},
		{"  a , b\t,c ", []string{"a", "b", "c"}},
		{"a b", []string{"a b"}},
		{",, ,", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := Split(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Split(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestInterrupt checks that Ctrl-C at a survey prompt becomes ErrInterrupted,
// which the command line turns into "interrupted; nothing was written".
func TestInterrupt(t *testing.T) {
	if err := mapErr(terminal.InterruptErr); !errors.Is(err, ErrInterrupted) {
		t.Errorf("mapErr(InterruptErr) = %v", err)
	}
	other := fmt.Errorf("read: %w", errors.New("EOF"))
	if err := mapErr(other); err != other {
		t.Errorf("mapErr changed another error: %v", err)
	}
}
