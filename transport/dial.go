package transport

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// Dial returns the transport spec describes: Local for "local", an SSH connection for "ssh".
func Dial(ctx context.Context, spec Spec) (Transport, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Kind == "local" {
		return &Local{}, nil
	}
	return DialSSH(ctx, spec)
}

// Validate checks spec and names the offending field.
func (s Spec) Validate() error {
	switch s.Kind {
	case "local":
		if s.Address != "" {
			return fmt.Errorf("address: not allowed for type local")
		}
	case "ssh":
		if s.Address == "" {
			return fmt.Errorf("address: required for type ssh")
		}
		if host, port, err := net.SplitHostPort(s.Address); err == nil {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
				return fmt.Errorf("address %q: want host or host:port", s.Address)
			}
		}
	case "":
		return fmt.Errorf("type: required (local or ssh)")
	default:
		return fmt.Errorf("type %q: want local or ssh", s.Kind)
	}
	if s.Timeout < 0 {
		return fmt.Errorf("timeout: must not be negative")
	}
	if s.Timeout > MaxTimeout {
		return fmt.Errorf("timeout: %v is more than the maximum %v", s.Timeout, MaxTimeout)
	}
	return nil
}
