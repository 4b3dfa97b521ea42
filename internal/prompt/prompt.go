// Package prompt asks questions on a terminal. Commands depend on the small
// Prompter interface (or on the subset of it they use, declared where they
// use it), so that tests can answer with a fake; Survey implements it with
// github.com/AlecAivazis/survey/v2.
//
// Only ask when both stdin and stdout are terminals: survey cannot work on
// pipes.
package prompt

import (
	"errors"
	"io"
	"strings"

	"github.com/AlecAivazis/survey/v2"
	"github.com/AlecAivazis/survey/v2/terminal"
)

// ErrInterrupted is returned when the user presses Ctrl-C at a prompt.
var ErrInterrupted = errors.New("interrupted")

// Prompter asks the user questions.
type Prompter interface {
	// Input asks for one line of text. The answer is def when the user
	// just presses Enter. validate, if not nil, is called on each attempt;
	// its error is shown and the question asked again.
	Input(message, help, def string, validate func(string) error) (string, error)
	// MultiInput asks for a list on one line, separated by commas.
	// validate, if not nil, checks the whole list each attempt.
	MultiInput(message, help string, def []string, validate func([]string) error) ([]string, error)
	// Confirm asks a yes/no question.
	Confirm(message string, def bool) (bool, error)
}

// Survey is a Prompter on a terminal.
type Survey struct {
	stdio survey.AskOpt
}

var _ Prompter = (*Survey)(nil)

// NewSurvey returns a Prompter reading from in and drawing on out; errOut
// receives validation messages. in and out must be terminals.
func NewSurvey(in terminal.FileReader, out terminal.FileWriter, errOut io.Writer) *Survey {
	return &Survey{stdio: survey.WithStdio(in, out, errOut)}
}

// Input implements Prompter.
func (s *Survey) Input(message, help, def string, validate func(string) error) (string, error) {
	var answer string
	q := &survey.Input{Message: message, Help: help, Default: def}
	err := survey.AskOne(q, &answer, s.stdio, survey.WithValidator(func(v any) error {
		if validate == nil {
			return nil
		}
		return validate(strings.TrimSpace(v.(string)))
	}))
	return strings.TrimSpace(answer), mapErr(err)
}

// MultiInput implements Prompter.
func (s *Survey) MultiInput(message, help string, def []string, validate func([]string) error) ([]string, error) {
	answer, err := s.Input(message, help, strings.Join(def, ", "), func(v string) error {
		if validate == nil {
			return nil
		}
		return validate(Split(v))
	})
	if err != nil {
		return nil, err
	}
	return Split(answer), nil
}

// Confirm implements Prompter.
func (s *Survey) Confirm(message string, def bool) (bool, error) {
	var answer bool
	err := survey.AskOne(&survey.Confirm{Message: message, Default: def}, &answer, s.stdio)
	return answer, mapErr(err)
}

func mapErr(err error) error {
	if errors.Is(err, terminal.InterruptErr) {
		return ErrInterrupted
	}
	return err
}

// Split splits a list typed on one line at commas, trimming white space
// around each entry and dropping empty ones. It splits like a
// comma-separated flag, so "a b" stays one (invalid) entry rather than
// silently becoming two.
func Split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
