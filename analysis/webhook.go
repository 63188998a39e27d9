package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// HookPayload is the JSON body a webhook receives.
type HookPayload struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// Phase is "pre-rollout" or "step".
	Phase string `json:"phase"`
	// Step is the 1-based step number (0 before the rollout), Weight the canary's.
	Step   int `json:"step"`
	Weight int `json:"weight"`
}

// CallWebhooks calls the webhooks for a phase in order; the first that does not
// answer 2xx is the error.
func (s Settings) CallWebhooks(ctx context.Context, p HookPayload) error {
	for _, w := range s.Webhooks {
		if w.When != p.Phase {
			continue
		}
		if err := post(ctx, w.URL, time.Duration(w.Timeout), p); err != nil {
			return fmt.Errorf("webhook %q: %w", w.Name, err)
		}
	}
	return nil
}

// Event is what the notification webhook receives. Text is for people (Slack
// and compatible incoming webhooks display it).
type Event struct {
	Release   string `json:"release"`
	Namespace string `json:"namespace"`
	// Event is step, paused, held, promoted or rolled-back.
	Event   string   `json:"event"`
	Step    int      `json:"step,omitempty"`
	Weight  int      `json:"weight,omitempty"`
	Text    string   `json:"text"`
	Results []Result `json:"results,omitempty"`
}

// SendEvent posts an event to the notification webhook, if there is one. A failed
// notification is reported, never fatal: the rollout's decision stands.
func (s Settings) SendEvent(ctx context.Context, e Event) error {
	if s.Notify == "" {
		return nil
	}
	if err := post(ctx, s.Notify, 10*time.Second, e); err != nil {
		return fmt.Errorf("notification webhook: %w", err)
	}
	return nil
}

func post(ctx context.Context, url string, timeout time.Duration, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
