package main

import (
	"path/filepath"

	"github.com/mailshift/mailshift/internal/reliability"
	"github.com/mailshift/mailshift/workflows"
)

// clusterScenarios need the production-shaped cluster (internal/cluster):
// each runs on it whether -cluster is given or not. "cluster-all" runs
// them all.
var clusterScenarios = []scenario{
	{"history-kill", "the cluster's history service SIGKILLed mid-plan and started again", 20, 150,
		func(o *reliability.Options, f flags) { o.Cluster, o.ClusterOptions.KillHistory = true, true }},
	{"matching-restart", "the cluster's matching service stopped mid-plan and started again", 20, 150,
		func(o *reliability.Options, f flags) { o.Cluster, o.ClusterOptions.RestartMatching = true, true }},
	{"frontend-restart", "the frontend the starter and workers are connected to stopped mid-plan and started again", 20, 150,
		func(o *reliability.Options, f flags) { o.Cluster, o.ClusterOptions.RestartFrontend = true, true }},
	{"cluster-postgres-restart", "the cluster's PostgreSQL crashed mid-plan and started again under the running services", 20, 150,
		func(o *reliability.Options, f flags) { o.Cluster, o.ClusterOptions.RestartPostgres = true, true }},
	{"redeploy", "both workers replaced mid-plan by a build with changed workflow code (bin/worker-next, tag mailshift_nextbuild) while migrations wait for a slot, a window, DNS, or copy", 20, 300,
		func(o *reliability.Options, f flags) {
			o.Cluster = true
			o.Redeploy = &reliability.RedeployOptions{NextWorker: filepath.Join(o.Bin, "worker-next"), ChangePrefix: workflows.DeployProbeChange,
				SaveHistories: f.saveHistories}
		}},
}

func init() { scenarios = append(scenarios, clusterScenarios...) }
