package main

import "github.com/mailshift/mailshift/internal/reliability"

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
}

func init() { scenarios = append(scenarios, clusterScenarios...) }
