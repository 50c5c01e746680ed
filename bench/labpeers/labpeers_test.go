package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// labJSON is the modes[] of a real `latlab lab --keep --json` (trimmed).
const labJSON = `{"prefix": "latlab-f9731c", "baseline": "host", "modes": [
 {"name": "host", "status": "ok", "client_netns": "latlab-f9731c-a", "server_netns": "latlab-f9731c-b", "target": "10.77.0.2:7707"},
 {"name": "bridge-nat", "status": "ok", "client_netns": "latlab-f9731c-c-bridge", "server_netns": "latlab-f9731c-b", "target": "10.77.0.2:7708"},
 {"name": "bridge-nat-dnat", "status": "ok", "client_netns": "latlab-f9731c-a", "server_netns": "latlab-f9731c-s-dnat", "target": "10.77.0.2:17707"},
 {"name": "veth-routed", "status": "ok", "client_netns": "latlab-f9731c-c-routed", "server_netns": "latlab-f9731c-b", "target": "10.77.0.2:7707"},
 {"name": "ipvlan-l2", "status": "skipped", "reason": "no ipvlan", "client_netns": "latlab-f9731c-c-ipvl2", "server_netns": "latlab-f9731c-b", "target": "10.77.0.2:7707"},
 {"name": "vxlan", "status": "ok", "client_netns": "latlab-f9731c-c-vxlan", "server_netns": "latlab-f9731c-s-vxlan", "target": "10.244.1.2:7707"}
], "results": []}`

func TestParseLab(t *testing.T) {
	info, ok, skipped, err := parseLab(strings.NewReader(labJSON))
	if err != nil {
		t.Fatal(err)
	}
	if info.Prefix != "latlab-f9731c" || info.Baseline != "host" || len(ok) != 5 {
		t.Errorf("info %+v, %d modes up", info, len(ok))
	}
	if len(skipped) != 1 || skipped[0].Name != "ipvlan-l2" || skipped[0].Reason != "no ipvlan" {
		t.Errorf("skipped = %+v", skipped)
	}
	for _, bad := range []string{
		`{"modes": [{"name": "vxlan", "status": "ok", "client_netns": "a", "server_netns": "b", "target": "1.2.3.4:7707"}]}`, // no baseline
		`{"modes": [{"name": "host", "status": "ok", "client_netns": "a", "target": "1.2.3.4:7707"}]}`,                       // no server ns
		`not json`,
	} {
		if _, _, _, err := parseLab(strings.NewReader(bad)); err == nil {
			t.Errorf("parseLab(%s) succeeded", bad)
		}
	}
}

func TestPlan(t *testing.T) {
	_, modes, _, err := parseLab(strings.NewReader(labJSON))
	if err != nil {
		t.Fatal(err)
	}
	eps, srvs, err := plan(modes)
	if err != nil {
		t.Fatal(err)
	}
	want := []server{
		{NS: "latlab-f9731c-b", Host: "10.77.0.2", Listen: 7707, SpTCP: 11111, SpUDP: 11112},
		{NS: "latlab-f9731c-b", Host: "10.77.0.2", Listen: 7708, SpTCP: 11113, SpUDP: 11114},
		{NS: "latlab-f9731c-s-dnat", Host: "10.77.0.2", Listen: 7707}, // no sockperf behind the published port
		{NS: "latlab-f9731c-s-vxlan", Host: "10.244.1.2", Listen: 7707, SpTCP: 11115, SpUDP: 11116},
	}
	if !slices.Equal(srvs, want) {
		t.Errorf("servers\n got %+v\nwant %+v", srvs, want)
	}
	byMode := map[string]endpoint{}
	for _, ep := range eps {
		byMode[ep.Mode] = ep
	}
	if ep := byMode["veth-routed"]; ep.Sockperf != "10.77.0.2:11111" || ep.SockUDP != "10.77.0.2:11112" || ep.Target != "10.77.0.2:7707" {
		t.Errorf("veth-routed shares host's servers: %+v", ep)
	}
	if ep := byMode["bridge-nat"]; ep.Sockperf != "10.77.0.2:11113" || ep.Note != "" {
		t.Errorf("bridge-nat has servers of its own: %+v", ep)
	}
	if ep := byMode[dnatMode]; ep.Sockperf != "" || ep.spTCP != 0 || !strings.Contains(ep.Note, "no sockperf") || ep.Target != "10.77.0.2:17707" {
		t.Errorf("dnat: %+v", ep)
	}
	if _, _, err := plan([]labMode{{Name: "x", Target: "10.0.0.1"}}); err == nil {
		t.Error("target without a port accepted")
	}

	// Every client command runs in the mode's client namespace, pinned, and
	// latlab does not ask a server it did not start to pin itself.
	c := config{latlab: "latlab", secs: 2, size: 64, ccpu: 1, scpu: 0, workloads: []string{"tcp_rr", "udp_rr"}}
	jobs := c.jobs(eps)
	if len(jobs) != 5*2+4*2 { // dnat: latlab only
		t.Errorf("%d jobs", len(jobs))
	}
	for _, j := range jobs {
		a := strings.Join(j.argv, " ")
		if !strings.HasPrefix(a, "taskset -c 1 ") || strings.Contains(a, "ip netns") {
			t.Errorf("%s: %s", j.name(), a)
		}
		if j.tool == "latlab" && !strings.Contains(a, "--server-cpu none") {
			t.Errorf("%s: %s", j.name(), a)
		}
	}
	sp := jobs[1]
	if got := strings.Join(sp.argv, " "); sp.tool != "sockperf" || got !=
		"taskset -c 1 nsenter --net=/var/run/netns/latlab-f9731c-a sockperf ping-pong -i 10.77.0.2 -m 64 --mps=max -t 2 --tcp -p 11111" {
		t.Errorf("host tcp sockperf: %s", got)
	}
	argv := serverArgv("latlab", 0, srvs[1])
	if len(argv) != 3 || !slices.Contains(argv[0], ":7708") || !slices.Contains(argv[2], "11114") || slices.Contains(argv[2], "--tcp") {
		t.Errorf("servers of bridge-nat: %v", argv)
	}
	if argv := serverArgv("latlab", 0, srvs[2]); len(argv) != 1 {
		t.Errorf("servers behind the published port: %v", argv)
	}
}

const sockperfOut = `sockperf: [Total Run] RunTime=1.000 sec; Warm up time=400 msec; SentMessages=40785; ReceivedMessages=40784
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.550 sec; SentMessages=22693; ReceivedMessages=22693
sockperf: ---> percentile 50.000 =   11.641
`

func TestParse(t *testing.T) {
	if r, err := parseSockperf([]byte(sockperfOut)); err != nil || math.Abs(r-22693/0.55) > 1e-6 {
		t.Errorf("parseSockperf = %v, %v", r, err)
	}
	if _, err := parseSockperf([]byte("sockperf: error")); err == nil {
		t.Error("garbage parsed")
	}
	if r, err := parseLatlab([]byte(`{"rate_per_sec": 41000.5, "latency_ns": {"p50": 20000}}`)); err != nil || r != 41000.5 {
		t.Errorf("parseLatlab = %v, %v", r, err)
	}
	if _, err := parseLatlab([]byte(`{}`)); err == nil {
		t.Error("result without a rate parsed")
	}
}

func TestSummarize(t *testing.T) {
	s := map[string]*series{
		"host":   {latlab: []float64{100, 110, 90, 100, 100, 100}, sockperf: []float64{200, 200, 200, 200, 200, 200}},
		"vxlan":  {latlab: []float64{50, 55, 45, 50, 50, 60}, sockperf: []float64{102, 98, 100, 100, 100, 104}},
		"dnat":   {latlab: []float64{80, 88, 72, 80, 80, 80}},
		"absent": nil,
	}
	tb := summarize("tcp_rr", []string{"host", "vxlan", "dnat", "absent"}, "host", s, map[string]string{"dnat": "no sockperf"})
	if len(tb.Rows) != 3 {
		t.Fatalf("rows %+v", tb.Rows)
	}
	host, vx, dn := tb.Rows[0], tb.Rows[1], tb.Rows[2]
	if host.LatlabRatio.Median != 1 || *host.DeltaPoints != 0 || host.LatlabRate != 100 || host.SockperfRate != 200 {
		t.Errorf("host %+v", host)
	}
	// latlab's per-round ratios are all 0.5 but the last (0.6); sockperf's
	// 0.51 0.49 0.5 0.5 0.5 0.52: medians 0.5 and 0.5.
	if vx.LatlabRatio.Median != 0.5 || vx.SockperfRatio.Median != 0.5 || vx.LatlabRatio.TooFew || vx.LatlabRatio.Hi != 0.6 {
		t.Errorf("vxlan ratios %+v %+v", vx.LatlabRatio, vx.SockperfRatio)
	}
	if dn.SockperfRatio != nil || dn.DeltaPoints != nil || dn.SockperfRate != 0 || dn.Note != "no sockperf" {
		t.Errorf("dnat %+v", dn)
	}
	if tb.Agree == nil || !*tb.Agree || tb.MaxAbsDelta != 0 {
		t.Errorf("agree %v, max %v", tb.Agree, tb.MaxAbsDelta)
	}
	var b strings.Builder
	printTable(&b, tb, 6)
	out := b.String()
	for _, want := range []string{"vxlan ", "0.500 [0.500, 0.600]", "+0.0", "(no sockperf)", "agree within 2 points: yes (max |Δ| = 0.0 points)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "needs at least 6") {
		t.Errorf("6 rounds marked too few:\n%s", out)
	}

	// Too few rounds for a CI, and a disagreement.
	s = map[string]*series{
		"host":  {latlab: []float64{100, 100, 100}, sockperf: []float64{100, 100, 100}},
		"vxlan": {latlab: []float64{50, 50, 50}, sockperf: []float64{53, 53, 60}},
	}
	tb = summarize("udp_rr", []string{"host", "vxlan"}, "host", s, nil)
	if d := *tb.Rows[1].DeltaPoints; math.Abs(d+3) > 1e-9 || tb.Agree == nil || *tb.Agree || math.Abs(tb.MaxAbsDelta-3) > 1e-9 {
		t.Errorf("Δ %v, agree %v, max %v", d, *tb.Agree, tb.MaxAbsDelta)
	}
	b.Reset()
	printTable(&b, tb, 3)
	for _, want := range []string{" 0.500 ", "-3.0", "needs at least 6", "agree within 2 points: no (max |Δ| = 3.0 points)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}

	// Only the baseline has both tools: nothing to agree on.
	tb = summarize("tcp_rr", []string{"host", "dnat"}, "host", map[string]*series{
		"host": {latlab: []float64{1}, sockperf: []float64{1}}, "dnat": {latlab: []float64{1}}}, nil)
	if tb.Agree != nil {
		t.Errorf("agree = %v with nothing compared", *tb.Agree)
	}
}

// A blocked round runs each workload's jobs back to back, every job once,
// in orders that change from round to round.
func TestBlockedOrder(t *testing.T) {
	var jobs []job
	for _, w := range []string{"tcp_rr", "udp_rr"} {
		for _, m := range []string{"host", "bridge-nat", "veth-routed"} {
			for _, tool := range []string{"latlab", "sockperf"} {
				jobs = append(jobs, job{mode: m, workload: w, tool: tool})
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	for range 20 {
		o := blockedOrder(rng, jobs, []string{"tcp_rr", "udp_rr"})
		if len(o) != len(jobs) {
			t.Fatalf("%d jobs, want %d", len(o), len(jobs))
		}
		switches, names := 0, map[string]bool{}
		var key []string
		for i, j := range o {
			names[j.name()] = true
			key = append(key, j.name())
			if i > 0 && j.workload != o[i-1].workload {
				switches++
			}
		}
		if switches != 1 || len(names) != len(jobs) {
			t.Fatalf("round %v: %d workload switches (want 1), %d distinct jobs", key, switches, len(names))
		}
		seen[strings.Join(key, ",")] = true
	}
	if len(seen) < 10 {
		t.Errorf("20 rounds gave %d distinct orders", len(seen))
	}
}

// The lab statistic: a mode 10% slower every round is significantly
// slower, its interval around 0.9 and at the Bonferroni level of two
// comparisons; a mode equal to the baseline straddles 1.
func TestLabRatios(t *testing.T) {
	s := map[string]*series{}
	rng := rand.New(rand.NewPCG(3, 4))
	for r := 0; r < 16; r++ {
		drift := 1 + 0.2*math.Sin(float64(r))
		for m, f := range map[string]float64{"host": 1, "slow": 0.9, "same": 1} {
			if s[m] == nil {
				s[m] = &series{}
			}
			s[m].sockperf = append(s[m].sockperf, 40000*drift*f*(1+0.01*rng.NormFloat64()))
		}
	}
	got := labRatios([]string{"host", "slow", "same"}, "host", s, func(x *series) []float64 { return x.sockperf })
	slow, same := got["slow"], got["same"]
	if slow == nil || same == nil || got["host"] != nil {
		t.Fatalf("got %v", got)
	}
	if slow.Hi >= 1 || slow.Lo > 0.9 || slow.Hi < 0.9 || math.Abs(slow.Level-0.975) > 0.01 {
		t.Errorf("slow: %+v, want an interval around 0.9 below 1 at the 97.5%% level", slow)
	}
	if same.Lo > 1 || same.Hi < 1 || same.HalfWidth <= 0 || same.HalfWidth > 3 {
		t.Errorf("same: %+v, want an interval of a few points around 1", same)
	}
}
