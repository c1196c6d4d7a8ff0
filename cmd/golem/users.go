package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/golem-ml/golem/store"
)

func init() {
	register("users list", "list the web app's accounts", runUsersList)
	register("users add", "add an account (password read from stdin)", runUsersAdd)
	register("users passwd", "set an account's password (read from stdin); its sessions end", runUsersPasswd)
	register("users disable", "disable an account: it cannot log in and its sessions end", func(args []string) error { return runUsersDisable("disable", args, true) })
	register("users enable", "enable a disabled account again", func(args []string) error { return runUsersDisable("enable", args, false) })
}

// stdin and stdout are the users commands' input and output (tests
// replace them).
var (
	stdin  io.Reader = os.Stdin
	stdout io.Writer = os.Stdout
)

var usersExamples = map[string]string{
	"list":    "golem users list --db sqlite:labels.db",
	"add":     "golem users add --db sqlite:labels.db --role annotator alice   # password on stdin",
	"passwd":  "golem users passwd --db sqlite:labels.db alice   # password on stdin",
	"disable": "golem users disable --db sqlite:labels.db alice",
	"enable":  "golem users enable --db sqlite:labels.db alice",
}

// usersFlags parses a users command's flags, before or after its one
// argument, the username, and opens the store.
func usersFlags(cmd string, args []string, extra func(fs *flag.FlagSet)) (*store.Store, string, error) {
	fs := newFlags("users "+cmd, usersExamples[cmd])
	db := fs.String("db", "sqlite:golem.db", "store: sqlite:FILE or a postgres:// URL")
	if extra != nil {
		extra(fs)
	}
	var pos []string
	for {
		if err := parseWithArgs(fs, args); err != nil {
			return nil, "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	want := 1
	if cmd == "list" {
		want = 0
	}
	if len(pos) != want {
		if want == 0 {
			return nil, "", usageError{fmt.Errorf("users %s: takes no argument, got %q", cmd, pos)}
		}
		return nil, "", usageError{fmt.Errorf("users %s: give one username (golem users %s [--db DSN] USERNAME)", cmd, cmd)}
	}
	st, err := store.Open(context.Background(), *db)
	if err != nil {
		return nil, "", err
	}
	if want == 0 {
		return st, "", nil
	}
	return st, pos[0], nil
}

// readPassword reads a password, the first line of stdin (prompting on
// stderr when stdin is a terminal).
func readPassword(what string) (string, error) {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(os.Stderr, "%s (shown as you type): ", what)
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("no password on stdin (give it as the first line)")
	}
	return pw, nil
}

func runUsersList(args []string) error {
	st, _, err := usersFlags("list", args, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	users, err := st.Users(context.Background())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tNAME\tROLE\tSTATUS\tCREATED")
	for _, u := range users {
		status := "enabled"
		if u.Disabled {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Name, u.Role, status, u.CreatedAt.Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

func runUsersAdd(args []string) error {
	var role, name string
	st, username, err := usersFlags("add", args, func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", "annotator", "annotator or admin")
		fs.StringVar(&name, "name", "", "display name (default: the username)")
	})
	if err != nil {
		return err
	}
	defer st.Close()
	pw, err := readPassword("password for " + username)
	if err != nil {
		return err
	}
	u, err := st.CreateUser(context.Background(), store.NewUser{Username: username, Name: name, Password: pw, Role: store.Role(role)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "users: added %s (%s, id %d)\n", u.Username, u.Role, u.ID)
	return nil
}

func runUsersPasswd(args []string) error {
	st, username, err := usersFlags("passwd", args, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	u, err := st.UserByName(ctx, username)
	if err != nil {
		return err
	}
	pw, err := readPassword("new password for " + u.Username)
	if err != nil {
		return err
	}
	if err := st.SetPassword(ctx, u.ID, pw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "users: set the password of %s; its sessions ended\n", u.Username)
	return nil
}

func runUsersDisable(cmd string, args []string, disabled bool) error {
	st, username, err := usersFlags(cmd, args, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	u, err := st.UserByName(ctx, username)
	if err != nil {
		return err
	}
	if err := st.SetDisabled(ctx, u.ID, disabled); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "users: %sd %s\n", cmd, u.Username)
	return nil
}
