// The cluster backend's task kind (core/spec/task_kind.h): `service` and
// `request` of a task, into a drover.cluster.ClusterTask
// (backends/cluster/cluster.proto).
#ifndef DROVER_BACKENDS_CLUSTER_CLUSTER_KIND_H_
#define DROVER_BACKENDS_CLUSTER_CLUSTER_KIND_H_

#include <memory>

#include "core/spec/task_kind.h"

namespace drover::cluster {

std::unique_ptr<spec::TaskKind> MakeClusterTaskKind();

}  // namespace drover::cluster

#endif  // DROVER_BACKENDS_CLUSTER_CLUSTER_KIND_H_
