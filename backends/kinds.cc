#include "backends/kinds.h"

#include "backends/cluster/cluster_kind.h"
#include "backends/fork/fork_kind.h"
#include "backends/spawn/spawn_kind.h"
#include "backends/threads/threads_kind.h"

namespace drover {

void AddBuiltinTaskKinds(spec::TaskKinds* kinds) {
  kinds->Add("spawn", spawn::MakeSpawnTaskKind());
  kinds->Add("fork", fork::MakeForkTaskKind());
  kinds->Add("threads", threads::MakeThreadsTaskKind());
  kinds->Add("cluster", cluster::MakeClusterTaskKind());
}

}  // namespace drover
