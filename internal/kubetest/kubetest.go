// Package kubetest runs a real Kubernetes control plane (etcd and
// kube-apiserver, optionally kube-controller-manager) for Go tests, on random
// loopback ports with a throwaway PKI. It is the "API server only" level of
// the project's real-Kubernetes tests: client-go reads and writes of Secrets
// and ConfigMaps, CRDs, server-side validation and helm installs without
// --wait work; pods never run (there is no kubelet).
//
// The binaries come from the folder named by the KUBE_BIN_DIR environment
// variable, as built by `make k8s-bins` (scripts/k8s/build-binaries.sh). When
// it is unset the test is skipped with a message saying so; `make test` sets
// it.
//
//	env := kubetest.Start(t)
//	secrets := env.Client.CoreV1().Secrets("default")
package kubetest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// BinDirEnv names the environment variable holding the folder with etcd,
// kube-apiserver and kube-controller-manager.
const BinDirEnv = "KUBE_BIN_DIR"

// Env is one running control plane. Everything it started stops when the
// test that started it ends.
type Env struct {
	// RESTConfig authenticates as a cluster admin (system:masters).
	RESTConfig *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same identity,
	// for kubectl, helm or code that loads a kubeconfig.
	Kubeconfig string
	// Client is a clientset built from RESTConfig.
	Client kubernetes.Interface
	// Dir holds the PKI and the kubeconfig; its run<N> folder holds etcd's
	// data and the daemons' logs (printed when the test fails).
	Dir string
}

// Option changes what Start runs.
type Option func(*options)

type options struct {
	controllerManager bool
	startTimeout      time.Duration
}

// WithControllerManager also runs kube-controller-manager. Without it
// namespaces never finish terminating, new namespaces get no default
// ServiceAccount and Deployments create no ReplicaSets; with it start-up takes
// a little longer.
func WithControllerManager() Option {
	return func(o *options) { o.controllerManager = true }
}

// WithStartTimeout bounds how long Start waits for the API server (default
// 60 s; the machines are small and shared).
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// Start runs etcd and kube-apiserver (and kube-controller-manager with
// WithControllerManager) and returns once the API server reports ready. It
// skips the test when KUBE_BIN_DIR is unset and fails it when a binary is
// missing or the control plane does not come up. Everything is stopped with
// t.Cleanup, the API server before etcd.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := options{startTimeout: 60 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	binDir := os.Getenv(BinDirEnv)
	if binDir == "" {
		t.Skipf("kubetest: %s is not set; build the Kubernetes binaries with `make k8s-bins` "+
			"(or scripts/k8s/build-binaries.sh apiserver) and set %s to the folder it prints", BinDirEnv, BinDirEnv)
	}
	need := []string{"etcd", "kube-apiserver"}
	if o.controllerManager {
		need = append(need, "kube-controller-manager")
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			t.Fatalf("kubetest: %s=%s has no %s (run scripts/k8s/build-binaries.sh apiserver): %v", BinDirEnv, binDir, b, err)
		}
	}

	// The folder is registered before any process, so t.Cleanup removes it
	// only after every process has stopped.
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatalf("kubetest: %v", err)
	}

	// Free ports are found by binding :0 and closing; another process may
	// take one in between, so a failed start is retried on new ports.
	var env *Env
	for attempt := 1; ; attempt++ {
		env, err = start(t, binDir, dir, p, o, attempt)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("kubetest: %v", err)
		}
		t.Logf("kubetest: attempt %d failed, retrying on new ports: %v", attempt, err)
	}
	return env
}

func start(t testing.TB, binDir, dir string, p *pki, o options, attempt int) (*Env, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort := ports[0], ports[1], ports[2]
	run := filepath.Join(dir, "run"+strconv.Itoa(attempt))
	if err := os.MkdirAll(run, 0o700); err != nil {
		return nil, fmt.Errorf("create run folder: %w", err)
	}
	procs := &processes{t: t}
	ok := false
	defer func() {
		if !ok {
			procs.stop()
		}
	}()

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if err := procs.start(filepath.Join(run, "etcd.log"), filepath.Join(binDir, "etcd"),
		"--name=kubetest",
		"--data-dir="+filepath.Join(run, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL,
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	); err != nil {
		return nil, err
	}

	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := procs.start(filepath.Join(run, "kube-apiserver.log"), filepath.Join(binDir, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+p.path("apiserver.crt"),
		"--tls-private-key-file="+p.path("apiserver.key"),
		"--client-ca-file="+p.path("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p.path("sa.pub"),
		"--service-account-signing-key-file="+p.path("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--cert-dir="+filepath.Join(run, "apiserver-certs"),
	); err != nil {
		return nil, err
	}
	if err := waitReady(host, p, o.startTimeout, procs); err != nil {
		return nil, err
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, host, p); err != nil {
		return nil, err
	}
	if o.controllerManager {
		if err := procs.start(filepath.Join(run, "kube-controller-manager.log"), filepath.Join(binDir, "kube-controller-manager"),
			"--kubeconfig="+kubeconfig,
			"--authentication-kubeconfig="+kubeconfig,
			"--authorization-kubeconfig="+kubeconfig,
			"--controllers=*",
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port=0",
			"--use-service-account-credentials=false",
			"--service-account-private-key-file="+p.path("sa.key"),
			"--root-ca-file="+p.path("ca.crt"),
			"--cluster-signing-cert-file="+p.path("ca.crt"),
			"--cluster-signing-key-file="+p.path("ca.key"),
		); err != nil {
			return nil, err
		}
	}

	cfg := &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   p.caPEM,
			CertData: p.adminCertPEM,
			KeyData:  p.adminKeyPEM,
		},
		// Tests create and read in bursts; the client-side default (5 QPS)
		// would only slow them down.
		QPS:   200,
		Burst: 400,
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build clientset: %w", err)
	}
	ok = true
	t.Cleanup(procs.stop)
	return &Env{RESTConfig: cfg, Kubeconfig: kubeconfig, Client: client, Dir: dir}, nil
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free loopback port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady polls /readyz until the API server answers 200 (its post-start
// hooks, such as the default namespace and RBAC bootstrap, have run) or a
// daemon exits.
func waitReady(host string, p *pki, timeout time.Duration, procs *processes) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		return fmt.Errorf("load admin certificate: %w", err)
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs:      pool,
			Certificates: []tls.Certificate{cert},
		}},
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if err := procs.exited(); err != nil {
			return err
		}
		resp, err := client.Get(host + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver at %s not ready after %s (last answer: %s)%s", host, timeout, last, procs.logTails())
}

func writeKubeconfig(path, host string, p *pki) error {
	cfg := clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{
			"kubetest": {Server: host, CertificateAuthorityData: p.caPEM},
		},
		AuthInfos: map[string]*clientcmdapi.AuthInfo{
			"admin": {ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM},
		},
		Contexts: map[string]*clientcmdapi.Context{
			"kubetest": {Cluster: "kubetest", AuthInfo: "admin", Namespace: "default"},
		},
		CurrentContext: "kubetest",
	}
	if err := clientcmd.WriteToFile(cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// processes are the daemons of one control plane, in start order.
type processes struct {
	t     testing.TB
	procs []*process
}

type process struct {
	name    string
	log     string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

func (ps *processes) start(logPath, bin string, args ...string) error {
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create %s: %w", logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Pdeathsig kills the daemon if the test binary dies without running
	// its cleanups (a panic in another goroutine, a timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{name: filepath.Base(bin), log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	ps.procs = append(ps.procs, p)
	return nil
}

// exited reports a daemon that has already stopped, with its log.
func (ps *processes) exited() error {
	for _, p := range ps.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited early (%v)%s", p.name, p.waitErr, ps.logTails())
		default:
		}
	}
	return nil
}

// stop ends the daemons in reverse start order: the API server hangs on
// SIGTERM once etcd is gone, so it must go first.
func (ps *processes) stop() {
	failed := ps.t.Failed()
	for i := len(ps.procs) - 1; i >= 0; i-- {
		p := ps.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if failed {
		ps.t.Logf("kubetest: control plane logs:%s", ps.logTails())
	}
	ps.procs = nil
}

// logTails is the end of every daemon's log, for failure messages.
func (ps *processes) logTails() string {
	var b strings.Builder
	for _, p := range ps.procs {
		data, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		const keep = 4000
		if len(data) > keep {
			data = data[len(data)-keep:]
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				data = data[i+1:]
			}
		}
		fmt.Fprintf(&b, "\n--- %s (%s) ---\n%s", p.name, p.log, data)
	}
	return b.String()
}
