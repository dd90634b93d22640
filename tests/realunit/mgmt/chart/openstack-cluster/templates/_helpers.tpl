{{/* The cluster's name is the release name: the driver looks the Cluster up
     by it (driver.py _get_capi_cluster, driver_utils.chart_release_name). */}}
{{- define "oc.name" -}}{{ .Release.Name | trunc 53 | trimSuffix "-" }}{{- end -}}

{{- define "oc.kubeVersion" -}}v{{ required "kubernetesVersion is required" .Values.kubernetesVersion | trimPrefix "v" }}{{- end -}}

{{- define "oc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
cluster.x-k8s.io/cluster-name: {{ include "oc.name" . }}
capi.stackhpc.com/cluster: {{ include "oc.name" . }}
{{- end -}}

{{/* CAPO v1beta1 OpenStackMachineSpec (api/v1beta1/openstackmachine_types.go):
     flavor, image.id, sshKeyName, rootVolume{sizeGiB,type}, ports.
     Args: (list $ $machine $defaults) */}}
{{- define "oc.machineSpec" -}}
{{- $ := index . 0 }}{{ $m := index . 1 }}{{ $d := index . 2 -}}
{{- $root := mergeOverwrite (deepCopy ($d.machineRootVolume | default dict)) ($m.machineRootVolume | default dict) -}}
flavor: {{ required "machineFlavor is required" $m.machineFlavor | quote }}
image:
  id: {{ required "machineImageId is required" $.Values.machineImageId | quote }}
{{- with $.Values.machineSSHKeyName }}
sshKeyName: {{ . | quote }}
{{- end }}
{{- if $root.diskSize }}
rootVolume:
  sizeGiB: {{ $root.diskSize }}
  {{- with $root.volumeType }}
  type: {{ . | quote }}
  {{- end }}
  {{- with $root.availabilityZone }}
  availabilityZone:
    name: {{ . | quote }}
  {{- end }}
{{- end }}
{{- with ($m.machineNetworking | default $d.machineNetworking | default dict).ports }}
ports:
  {{- toYaml . | nindent 2 }}
{{- end }}
identityRef:
  cloudName: openstack
  name: {{ required "cloudCredentialsSecretName is required" $.Values.cloudCredentialsSecretName }}
{{- end -}}
