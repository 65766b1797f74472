// Package metricsserver is the resource-metrics role of the addon image: upstream
// metrics-server (sigs.k8s.io/metrics-server), which serves metrics.k8s.io through the API
// aggregation layer for `kubectl top` and the HorizontalPodAutoscaler.
package metricsserver

import (
	"context"
	"fmt"

	"sigs.k8s.io/metrics-server/cmd/metrics-server/app"
)

// Main runs metrics-server with its own flags until ctx ends.
func Main(ctx context.Context, args []string) error {
	cmd := app.NewMetricsServerCommand(ctx.Done())
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	if err := cmd.ExecuteContext(ctx); err != nil {
		return fmt.Errorf("metrics-server: %w", err)
	}
	return nil
}
