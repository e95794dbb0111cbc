package notify_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/patchctl/patchctl/notify"
)

func ExampleWriter() {
	n := notify.NewWriter(os.Stdout)
	err := n.Notify(context.Background(), notify.Message{
		Kind:     notify.KindExposure,
		Title:    "2 hosts run a vulnerable nutcracker",
		Security: true,
		Version:  "0.4.1",
		Date:     time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC),
		Fields:   []notify.Field{{Key: "hosts", Value: "cache-1, cache-2"}},
	})
	if after, retry := notify.RetryAfter(err); retry {
		fmt.Println("retry in", after)
	}
	// Output:
	// [SECURITY] 2 hosts run a vulnerable nutcracker (0.4.1)
	//   kind      exposure
	//   version   0.4.1
	//   date      2024-05-02
	//   hosts     cache-1, cache-2
}
