package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of deploy/compose.yaml the tests read.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
		Target     string `yaml:"target"`
	} `yaml:"build"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Secrets     []string          `yaml:"secrets"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	StopGrace   string            `yaml:"stop_grace_period"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// invocation is the cdrguard command line of a compose service: its
// command, or the cdrguard part of a `sh -c` command.
func invocation(t *testing.T, name string, s composeService) []string {
	t.Helper()
	if len(s.Entrypoint) >= 2 && s.Entrypoint[0] == "/bin/sh" && s.Entrypoint[1] == "-c" {
		line := regexp.MustCompile(`"[^"]*"`).ReplaceAllString(strings.Join(s.Command, " "), "VALUE")
		f := strings.Fields(line)
		for i, w := range f {
			if filepath.Base(w) == "cdrguard" {
				return f[i+1:]
			}
		}
		t.Fatalf("compose service %s: no cdrguard in %q", name, line)
	}
	return s.Command
}

// mountsOf maps a compose service's bind mounts and secrets (container
// path → file here, relative to deploy/).
func mountsOf(c composeFile, s composeService) map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		f := strings.Split(v, ":")
		if len(f) >= 2 && strings.HasPrefix(f[0], ".") {
			m[f[1]] = f[0]
		}
	}
	for _, name := range s.Secrets {
		m["/run/secrets/"+name] = c.Secrets[name].File
	}
	return m
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestCompose checks deploy/compose.yaml against the binary and the files
// it mounts: the services the quickstart needs, cdrguard's commands,
// flags and environment, its config (loaded by the binary), and that
// Prometheus and Grafana point at what the other services serve.
func TestCompose(t *testing.T) {
	var c composeFile
	readYAML(t, "compose.yaml", &c)
	for _, name := range []string{"kafka", "clickhouse", "cdrguard", "console", "gen", "prometheus", "grafana"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml has no service %s", name)
		}
	}
	kafka := c.Services["kafka"]
	if !strings.Contains(kafka.Environment["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("kafka: KAFKA_PROCESS_ROLES %q: want KRaft (broker,controller)", kafka.Environment["KAFKA_PROCESS_ROLES"])
	}
	ch := c.Services["clickhouse"]
	if m := regexp.MustCompile(`:(\d+)\.`).FindStringSubmatch(ch.Image); m == nil {
		t.Errorf("clickhouse image %q has no version tag", ch.Image)
	} else if major, _ := strconv.Atoi(m[1]); major < 23 {
		t.Errorf("clickhouse image %q: want a modern server", ch.Image)
	}
	_, dockerStages := parseDockerfile(t, "Dockerfile")
	stageNames := map[string]bool{}
	for _, in := range dockerStages {
		if in.cmd == "FROM" {
			if f := strings.Fields(in.args); len(f) == 3 {
				stageNames[f[2]] = true
			}
		}
	}

	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		where := "compose service " + name
		if s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s builds %s, want deploy/Dockerfile", where, s.Build.Dockerfile)
		}
		if _, err := os.Stat(filepath.Join(s.Build.Context, "go.mod")); err != nil {
			t.Errorf("%s: build context %s is not the repository root", where, s.Build.Context)
		}
		if s.Build.Target != "" && !stageNames[s.Build.Target] {
			t.Errorf("%s: build target %s is not a stage of the Dockerfile", where, s.Build.Target)
		}
		args := invocation(t, name, s)
		h := checkInvocation(t, where, args, s.Environment)
		for container, here := range mountsOf(c, s) {
			if _, err := os.Stat(here); err != nil {
				t.Errorf("%s mounts %s at %s: %v", where, here, container, err)
			}
		}
		if h == nil || args[0] != "run" {
			continue
		}
		config := ""
		for i, a := range args {
			if a == "--config" && i+1 < len(args) {
				config = mountsOf(c, s)[args[i+1]]
			}
		}
		if config == "" {
			t.Errorf("%s: --config is not a mounted file", where)
			continue
		}
		b, err := os.ReadFile(config)
		if err != nil {
			t.Fatal(err)
		}
		checkRunConfig(t, where, string(b), mountsOf(c, s), s.Environment)
		cfg := runConfigOf(t, b)

		// Metrics: published, scraped by Prometheus.
		listen := s.Environment["CDRGUARD_METRICS_LISTEN"]
		if listen == "" {
			listen = cfg.Metrics.Listen
		}
		if !strings.HasPrefix(listen, "0.0.0.0:") && !strings.HasPrefix(listen, ":") {
			t.Errorf("%s: metrics listen on %q, unreachable from Prometheus", where, listen)
		}
		var prom struct {
			ScrapeConfigs []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"scrape_configs"`
		}
		readYAML(t, "prometheus/prometheus.yml", &prom)
		scraped := false
		for _, sc := range prom.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, target := range st.Targets {
					if target == name+":"+strconv.Itoa(portOf(t, listen)) {
						scraped = true
					}
				}
			}
		}
		if !scraped {
			t.Errorf("prometheus.yml does not scrape %s:%d", name, portOf(t, listen))
		}
		// ClickHouse: the server's database, user and password.
		dsn := s.Environment["CDRGUARD_CLICKHOUSE"]
		if dsn == "" {
			dsn = cfg.ClickHouse.DSN
		}
		u, err := url.Parse(dsn)
		if err != nil || u.Hostname() != "clickhouse" || u.Port() != "9000" || strings.Trim(u.Path, "/") != ch.Environment["CLICKHOUSE_DB"] {
			t.Errorf("%s: ClickHouse DSN %q, want clickhouse://clickhouse:9000/%s", where, dsn, ch.Environment["CLICKHOUSE_DB"])
		}
		if cfg.ClickHouse.Username != ch.Environment["CLICKHOUSE_USER"] {
			t.Errorf("%s: ClickHouse user %q, the server has %q", where, cfg.ClickHouse.Username, ch.Environment["CLICKHOUSE_USER"])
		}
		pw, err := os.ReadFile(mountsOf(c, s)[cfg.ClickHouse.PasswordFile])
		if err != nil || strings.TrimSpace(string(pw)) != ch.Environment["CLICKHOUSE_PASSWORD"] {
			t.Errorf("%s: ClickHouse password_file %s does not hold the server's password", where, cfg.ClickHouse.PasswordFile)
		}
		if grace, err := time.ParseDuration(s.StopGrace); err != nil || grace <= cfg.ShutdownTimeout {
			t.Errorf("%s: stop_grace_period %q must be longer than shutdown_timeout %v", where, s.StopGrace, cfg.ShutdownTimeout)
		}
	}

	checkGrafana(t, c)
}

// runConfigFields are the config settings the manifests' checks read.
type runConfigFields struct {
	Metrics struct {
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`
	ClickHouse struct {
		DSN          string `yaml:"dsn"`
		Username     string `yaml:"username"`
		PasswordFile string `yaml:"password_file"`
	} `yaml:"clickhouse"`
	Kafka struct {
		SASL struct {
			PasswordFile string `yaml:"password_file"`
		} `yaml:"sasl"`
	} `yaml:"kafka"`
	Detect struct {
		Rules string `yaml:"rules"`
	} `yaml:"detect"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

func runConfigOf(t *testing.T, b []byte) runConfigFields {
	t.Helper()
	cfg := runConfigFields{ShutdownTimeout: 30 * time.Second} // the binary's default
	cfg.Metrics.Listen = "127.0.0.1:9464"
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// checkGrafana checks the provisioning the compose stack mounts: the data
// sources point at the compose services, the dashboards directory is the
// one the provider reads, and every panel uses a provisioned data source.
func checkGrafana(t *testing.T, c composeFile) {
	t.Helper()
	g := c.Services["grafana"]
	mounts := mountsOf(c, g)
	dirs := map[string]string{} // container dir → dir here
	for _, v := range g.Volumes {
		f := strings.Split(v, ":")
		dirs[f[1]] = f[0]
	}
	if !strings.Contains(g.Environment["GF_INSTALL_PLUGINS"], "grafana-clickhouse-datasource") {
		t.Error("grafana: GF_INSTALL_PLUGINS does not install grafana-clickhouse-datasource")
	}
	var ds struct {
		Datasources []struct {
			UID      string         `yaml:"uid"`
			Type     string         `yaml:"type"`
			URL      string         `yaml:"url"`
			JSONData map[string]any `yaml:"jsonData"`
			Secure   map[string]any `yaml:"secureJsonData"`
		} `yaml:"datasources"`
	}
	dsDir := dirs["/etc/grafana/provisioning/datasources"]
	readYAML(t, filepath.Join(dsDir, "cdrguard.yaml"), &ds)
	uids := map[string]string{}
	ch := c.Services["clickhouse"]
	for _, d := range ds.Datasources {
		uids[d.UID] = d.Type
		switch d.Type {
		case "grafana-clickhouse-datasource":
			if d.JSONData["host"] != "clickhouse" || d.JSONData["port"] != 9000 || d.JSONData["protocol"] != "native" {
				t.Errorf("ClickHouse data source %v: want host clickhouse, port 9000, native", d.JSONData)
			}
			if d.JSONData["defaultDatabase"] != ch.Environment["CLICKHOUSE_DB"] || d.JSONData["username"] != ch.Environment["CLICKHOUSE_USER"] {
				t.Errorf("ClickHouse data source %v: not the server's database and user", d.JSONData)
			}
			file := regexp.MustCompile(`^\$__file\{(.+)\}$`).FindStringSubmatch(d.Secure["password"].(string))
			if file == nil || mounts[file[1]] == "" {
				t.Errorf("ClickHouse data source password %v: want $__file{} of a mounted secret", d.Secure["password"])
			} else if pw, _ := os.ReadFile(mounts[file[1]]); strings.TrimSpace(string(pw)) != ch.Environment["CLICKHOUSE_PASSWORD"] {
				t.Errorf("ClickHouse data source password file %s does not hold the server's password", file[1])
			}
		case "prometheus":
			if d.URL != "http://prometheus:9090" {
				t.Errorf("Prometheus data source URL %s, want http://prometheus:9090", d.URL)
			}
		}
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(dirs["/etc/grafana/provisioning/dashboards"], "cdrguard.yaml"), &prov)
	if len(prov.Providers) != 1 || dirs[prov.Providers[0].Options.Path] != "./grafana/dashboards" {
		t.Errorf("the dashboard provider reads %v, compose mounts ./grafana/dashboards elsewhere", prov.Providers)
	}
	home := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	if _, err := os.Stat(filepath.Join("grafana/dashboards", filepath.Base(home))); err != nil || filepath.Dir(home) != prov.Providers[0].Options.Path {
		t.Errorf("home dashboard %s is not a provisioned dashboard", home)
	}
	for _, d := range dashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if uids[tg.Datasource.UID] != tg.Datasource.Type {
					t.Errorf("%s / %s: data source %s (%s) is not provisioned", d.Title, p.Title, tg.Datasource.UID, tg.Datasource.Type)
				}
			}
		}
	}
}

// k8sObject is the part of a Kubernetes object the tests read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Selector yaml.Node `yaml:"selector"`
		Ports    []struct {
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Template       struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

func k8sObjects(t *testing.T) map[string]k8sObject {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	readYAML(t, "k8s/kustomization.yaml", &kust)
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) != len(kust.Resources)+1 {
		t.Errorf("k8s/kustomization.yaml lists %v; the directory has %v", kust.Resources, files)
	}
	objs := map[string]k8sObject{}
	for _, f := range kust.Resources {
		b, err := os.ReadFile(filepath.Join("k8s", f))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("k8s/%s: %v", f, err)
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return objs
}

// parseQuantity reads the Kubernetes memory quantities the manifests use.
func parseQuantity(t *testing.T, q string) int64 {
	t.Helper()
	for suffix, mul := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("quantity %q: %v", q, err)
			}
			return v * mul
		}
	}
	t.Fatalf("quantity %q: unknown unit", q)
	return 0
}

// TestKubernetes checks deploy/k8s against the binary: the objects the
// issue names, cdrguard's args, the config (loaded by the binary with the
// ConfigMap and Secret mounted as the pods mount them), probes and
// Services on declared ports, graceful termination longer than
// shutdown_timeout, and memory sized for the measured peak.
func TestKubernetes(t *testing.T) {
	objs := k8sObjects(t)
	for _, want := range []string{"Deployment/cdrguard-run", "Deployment/cdrguard-console", "Service/cdrguard-console",
		"Service/cdrguard-metrics", "ConfigMap/cdrguard", "Secret/cdrguard", "PodDisruptionBudget/cdrguard-run"} {
		if _, ok := objs[want]; !ok {
			t.Errorf("deploy/k8s has no %s", want)
		}
	}
	image := ""
	for key, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		pod := o.Spec.Template.Spec
		if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
			t.Errorf("%s: pods must run as non-root", key)
		}
		for _, c := range pod.Containers {
			where := key + " container " + c.Name
			repo, _, _ := strings.Cut(c.Image, ":")
			if image == "" {
				image = repo
			} else if repo != image {
				t.Errorf("%s: image %s, other containers run %s", where, c.Image, image)
			}
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			h := checkInvocation(t, where, c.Args, env)
			ports := map[string]int{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			for _, pr := range []*probe{c.ReadinessProbe, c.LivenessProbe} {
				if pr == nil {
					t.Errorf("%s: missing a readiness or liveness probe", where)
				} else if ports[pr.HTTPGet.Port] == 0 {
					t.Errorf("%s: probe on port %q, which the container does not declare", where, pr.HTTPGet.Port)
				}
			}
			if c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" || c.Resources.Requests["cpu"] == "" {
				t.Errorf("%s: want cpu and memory requests and a memory limit", where)
				continue
			}
			limit := parseQuantity(t, c.Resources.Limits["memory"])
			if parseQuantity(t, c.Resources.Requests["memory"]) > limit {
				t.Errorf("%s: memory request above the limit", where)
			}
			if gml := env["GOMEMLIMIT"]; gml != "" && parseQuantity(t, gml) >= limit {
				t.Errorf("%s: GOMEMLIMIT %s is not under the memory limit %s", where, gml, c.Resources.Limits["memory"])
			}
			if h == nil || c.Args[0] != "run" {
				continue
			}
			// Mount the ConfigMap and Secret as the pod does.
			dir := t.TempDir()
			mounts := map[string]string{}
			configPath := ""
			for i, a := range c.Args {
				if a == "--config" && i+1 < len(c.Args) {
					configPath = c.Args[i+1]
				}
			}
			for _, vm := range c.VolumeMounts {
				for _, v := range pod.Volumes {
					if v.Name != vm.Name {
						continue
					}
					var files map[string]string
					switch {
					case v.ConfigMap != nil && v.ConfigMap.Name == "cdrguard-rules":
						// created from the rules file (see kustomization.yaml)
						files = map[string]string{"rules.yaml": mustRead(t, filepath.Join(repoRoot, "deploy/rules.yaml"))}
					case v.ConfigMap != nil:
						files = objs["ConfigMap/"+v.ConfigMap.Name].Data
					case v.Secret != nil:
						files = objs["Secret/"+v.Secret.SecretName].StringData
					}
					if files == nil {
						t.Errorf("%s: volume %s has no object in deploy/k8s", where, v.Name)
					}
					local := filepath.Join(dir, vm.Name)
					if err := os.MkdirAll(local, 0o700); err != nil {
						t.Fatal(err)
					}
					for name, content := range files {
						if err := os.WriteFile(filepath.Join(local, name), []byte(content), 0o600); err != nil {
							t.Fatal(err)
						}
					}
					if vm.SubPath != "" {
						mounts[vm.MountPath] = filepath.Join(local, vm.SubPath)
					} else {
						mounts[vm.MountPath] = local
					}
				}
			}
			config, ok := mounts[configPath]
			if !ok {
				t.Errorf("%s: --config %s is not mounted", where, configPath)
				continue
			}
			b := []byte(mustRead(t, config))
			cfg := runConfigOf(t, b)
			// The mount table rewrites longest paths first: the config's
			// own mount must not shadow the directories beside it.
			delete(mounts, configPath)
			checkRunConfig(t, where, string(b), mounts, env)
			for _, f := range []string{cfg.ClickHouse.PasswordFile, cfg.Kafka.SASL.PasswordFile, cfg.Detect.Rules} {
				if f != "" && !mountedFile(mounts, f) {
					t.Errorf("%s: the config reads %s, which no volume provides", where, f)
				}
			}
			if time.Duration(pod.TerminationGracePeriodSeconds)*time.Second <= cfg.ShutdownTimeout {
				t.Errorf("%s: terminationGracePeriodSeconds %d must be longer than shutdown_timeout %v", where, pod.TerminationGracePeriodSeconds, cfg.ShutdownTimeout)
			}
			if ports["metrics"] != portOf(t, cfg.Metrics.Listen) || !strings.HasPrefix(cfg.Metrics.Listen, "0.0.0.0:") {
				t.Errorf("%s: metrics.listen %s, the container declares metrics port %d", where, cfg.Metrics.Listen, ports["metrics"])
			}
			if limit < int64(measuredPeakRSS)*3/2 {
				t.Errorf("%s: memory limit %s is under 1.5 × the measured peak (%d MiB)", where, c.Resources.Limits["memory"], measuredPeakRSS>>20)
			}
		}
	}
	// Services and the PDB select pods that declare the target ports.
	for key, o := range objs {
		if o.Kind != "Service" && o.Kind != "PodDisruptionBudget" {
			continue
		}
		var sel map[string]string
		if o.Kind == "Service" {
			_ = o.Spec.Selector.Decode(&sel)
		} else {
			var s struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			}
			_ = o.Spec.Selector.Decode(&s)
			sel = s.MatchLabels
		}
		matched := false
		for _, d := range objs {
			if d.Kind != "Deployment" || !subset(sel, d.Spec.Template.Metadata.Labels) {
				continue
			}
			matched = true
			for _, p := range o.Spec.Ports {
				found := false
				for _, c := range d.Spec.Template.Spec.Containers {
					for _, cp := range c.Ports {
						found = found || cp.Name == p.TargetPort
					}
				}
				if !found {
					t.Errorf("%s: targetPort %s is not a port of %s", key, p.TargetPort, d.Metadata.Name)
				}
			}
		}
		if !matched || len(sel) == 0 {
			t.Errorf("%s: selector %v matches no Deployment", key, sel)
		}
	}
}

// measuredPeakRSS is the VmHWM of `cdrguard run` with the ClickHouse
// loader draining a generated day at scale 1 (see k8s/run.yaml).
const measuredPeakRSS = 636 << 20

func mountedFile(mounts map[string]string, path string) bool {
	for container, here := range mounts {
		if rest, ok := strings.CutPrefix(path, container); ok {
			if _, err := os.Stat(here + rest); err == nil {
				return true
			}
		}
	}
	return false
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
