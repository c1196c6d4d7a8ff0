package store

import (
	"context"
	"fmt"
)

// maxGuidelinesBytes bounds one task's guidelines.
const maxGuidelinesBytes = 64 << 10

// Guidelines returns the admin's instructions for each task that has some.
func (s *Store) Guidelines(ctx context.Context) (map[Task]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT task, text FROM guidelines ORDER BY task`)
	if err != nil {
		return nil, fmt.Errorf("store: guidelines: %w", err)
	}
	defer rows.Close()
	g := map[Task]string{}
	for rows.Next() {
		var task, text string
		if err := rows.Scan(&task, &text); err != nil {
			return nil, fmt.Errorf("store: guidelines: %w", err)
		}
		g[Task(task)] = text
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: guidelines: %w", err)
	}
	return g, nil
}

// SetGuidelines replaces the instructions for task, written by the user by;
// "" removes them.
func (s *Store) SetGuidelines(ctx context.Context, by int64, task Task, text string) error {
	if _, _, err := task.queue(); err != nil {
		return err
	}
	if len(text) > maxGuidelinesBytes {
		return invalidf("store: the guidelines for %s have %d bytes, more than %d", task, len(text), maxGuidelinesBytes)
	}
	if text != "" {
		if err := validText("the guidelines for "+string(task), text); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM guidelines WHERE task = ?`), string(task))
	if err == nil && text != "" {
		_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO guidelines (task, text, updated_by, updated_at) VALUES (?, ?, ?, ?)`),
			string(task), text, by, now())
	}
	if err != nil {
		return fmt.Errorf("store: set guidelines for %s: %w", task, err)
	}
	return nil
}

// PromptStat is a prompt with the number of labels and skips it has.
type PromptStat struct {
	Prompt
	Demonstrations int
	Rankings       int // comparisons included
	Comparisons    int // rankings of two answers
	Skips          int
}

// PromptStats returns up to limit prompts, oldest first from offset, with
// their label counts, and the number of prompts in all.
func (s *Store) PromptStats(ctx context.Context, offset, limit int) ([]PromptStat, int, error) {
	total, err := s.CountPrompts(ctx)
	if err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+promptColumns+`,
			(SELECT COUNT(*) FROM demonstrations d WHERE d.prompt_id = p.id),
			(SELECT COUNT(*) FROM rankings r WHERE r.prompt_id = p.id),
			(SELECT COUNT(*) FROM rankings r WHERE r.prompt_id = p.id AND r.k = 2),
			(SELECT COUNT(*) FROM skips k WHERE k.prompt_id = p.id)
		FROM prompts p ORDER BY p.id LIMIT ? OFFSET ?`), limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: prompt stats: %w", err)
	}
	defer rows.Close()
	var out []PromptStat
	for rows.Next() {
		var ps PromptStat
		if err := scanPrompt(rows, &ps.Prompt, &ps.Demonstrations, &ps.Rankings, &ps.Comparisons, &ps.Skips); err != nil {
			return nil, 0, fmt.Errorf("store: prompt stats: %w", err)
		}
		out = append(out, ps)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: prompt stats: %w", err)
	}
	return out, total, nil
}
