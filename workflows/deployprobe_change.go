package workflows

// DeployProbeChange prefixes the change IDs of the next build's extra step
// (deployprobe_next.go): one per stage, so that a migration already running
// when the new build arrives takes the step at its next stage change. (One
// change ID for all stages would stay at DefaultVersion for the rest of the
// run once the replay of an old stage change has looked it up.) The
// redeploy scenario looks for these markers in every history.
const DeployProbeChange = "redeploy-probe-"
