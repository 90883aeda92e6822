// `drover validate`, `drover status`, `drover logs` and `drover outputs`:
// read-only views of spec files and of the state directory.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backends/backend.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"
#include "tools/cli/commands.h"
#include "tools/cli/render.h"

namespace drover::cli {
namespace {

// Opens the store of an existing state directory (a missing one is an
// error here: reading must not create it).
Result<std::unique_ptr<store::Store>> OpenExisting(const std::string& dir) {
  if (!std::filesystem::exists(std::filesystem::path(dir) / "state.db")) {
    return NotFound("no drover state in " + dir +
                    " (run a job first, or pass --state-dir)");
  }
  return store::Store::Open(dir);
}

Result<store::JobRecord> FindJob(store::Store& store, const std::string& id) {
  if (id.empty()) {
    auto latest = store.LatestJob();
    if (!latest.ok()) return latest.status();
    if (!*latest) return NotFound("no jobs in " + store.dir().string());
    return **latest;
  }
  auto job = store.GetJob(id);
  if (!job.ok()) return job.status();
  if (!*job) return NotFound("no job " + id + " in " + store.dir().string());
  return **job;
}

}  // namespace

bool OpenJob(const std::string& dir, const std::string& id,
             std::unique_ptr<store::Store>* store, store::JobRecord* job) {
  auto opened = OpenExisting(dir);
  if (!opened.ok()) {
    std::fprintf(stderr, "drover: %s\n", opened.status().message().c_str());
    return false;
  }
  auto found = FindJob(**opened, id);
  if (!found.ok()) {
    std::fprintf(stderr, "drover: %s\n", found.status().message().c_str());
    return false;
  }
  *store = std::move(*opened);
  *job = std::move(*found);
  return true;
}

namespace {

bool CopyFile(const std::filesystem::path& path, std::FILE* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    std::fwrite(buf, 1, static_cast<size_t>(in.gcount()), out);
  }
  std::fflush(out);
  return true;
}

}  // namespace

int ValidateCommand(const std::vector<std::string>& files,
                    const BackendRegistry& registry) {
  int rc = kExitOk;
  spec::LoadOptions options;
  options.kinds = &registry.kinds();
  for (const auto& file : files) {
    auto loaded = spec::LoadFile(file, options);
    if (!loaded.ok()) {
      for (const auto& e : loaded.errors)
        std::fprintf(stderr, "%s\n", e.ToString().c_str());
      rc = kExitUsage;
      continue;
    }
    std::printf("%s: ok, job '%s' with %s\n", file.c_str(), loaded.spec->name.c_str(),
                Plural(loaded.spec->tasks.size(), "task").c_str());
  }
  return rc;
}

int StatusCommand(const StatusArgs& args) {
  auto filter = ParseStateFilter(args.state);
  if (!filter.ok()) {
    std::fprintf(stderr, "drover status: %s\n", filter.status().message().c_str());
    return kExitUsage;
  }
  std::unique_ptr<store::Store> store;
  store::JobRecord job;
  if (!OpenJob(args.state_dir, args.job, &store, &job)) return kExitFailed;
  auto tasks = store->Tasks(job.id);
  if (!tasks.ok()) {
    std::fprintf(stderr, "drover: %s\n", tasks.status().ToString().c_str());
    return kExitFailed;
  }
  if (args.json) {
    std::vector<store::TaskRecord> kept;
    for (auto& t : *tasks) {
      if (Keeps(*filter, t.state)) kept.push_back(std::move(t));
    }
    std::printf("%s\n", JobJson(job, kept).c_str());
  } else {
    PrintJobTable(stdout, job, *tasks, /*brief=*/false, *filter, store.get());
  }
  return kExitOk;
}

int LogsCommand(const LogsArgs& args) {
  if (args.positional.empty() || args.positional.size() > 2) {
    std::fprintf(stderr, "drover logs: give TASK or JOB TASK\n");
    return kExitUsage;
  }
  const std::string job_id = args.positional.size() == 2 ? args.positional[0] : "";
  const std::string task = args.positional.back();
  std::unique_ptr<store::Store> store;
  store::JobRecord job;
  if (!OpenJob(args.state_dir, job_id, &store, &job)) return kExitFailed;
  auto attempts = store->Attempts(job.id, task);
  if (!attempts.ok()) {
    std::fprintf(stderr, "drover: %s\n", attempts.status().ToString().c_str());
    return kExitFailed;
  }
  if (attempts->empty()) {
    std::fprintf(stderr, "drover: task '%s' of job %s has no attempts\n", task.c_str(),
                 job.id.c_str());
    return kExitFailed;
  }
  const store::AttemptRecord* chosen = &attempts->back();
  if (args.attempt > 0) {
    chosen = nullptr;
    for (const auto& a : *attempts) {
      if (a.number == static_cast<uint32_t>(args.attempt)) chosen = &a;
    }
    if (!chosen) {
      std::fprintf(stderr, "drover: task '%s' has no attempt %d (it has %zu)\n",
                   task.c_str(), args.attempt, attempts->size());
      return kExitFailed;
    }
  }
  const auto& o = chosen->outcome;
  if (args.stream != "err") {
    if (o.out.dropped) {
      std::fprintf(
          stderr,
          "[drover: the first %llu bytes of stdout were dropped (output_limit)]\n",
          static_cast<unsigned long long>(o.out.dropped));
    }
    CopyFile(store->LogPath(job.id, task, chosen->number, false), stdout);
  }
  if (args.stream != "out") {
    if (o.err.dropped) {
      std::fprintf(
          stderr,
          "[drover: the first %llu bytes of stderr were dropped (output_limit)]\n",
          static_cast<unsigned long long>(o.err.dropped));
    }
    CopyFile(store->LogPath(job.id, task, chosen->number, true), stderr);
  }
  return kExitOk;
}

std::vector<const store::TaskRecord*> ChooseInstances(
    const std::vector<store::TaskRecord>& rows, const std::string& task) {
  for (const auto& r : rows) {
    if (r.name == task) return {&r};
  }
  std::vector<const store::TaskRecord*> chosen;
  for (const auto& r : rows) {
    if (r.name.size() > task.size() && r.name.starts_with(task) &&
        r.name[task.size()] == '[') {
      chosen.push_back(&r);
    }
  }
  return chosen;
}

int OutputsCommand(const OutputsArgs& args) {
  if (args.positional.empty() || args.positional.size() > 2) {
    std::fprintf(stderr, "drover outputs: give TASK or JOB TASK\n");
    return kExitUsage;
  }
  const std::string job_id = args.positional.size() == 2 ? args.positional[0] : "";
  const std::string& task = args.positional.back();
  std::unique_ptr<store::Store> store;
  store::JobRecord job;
  if (!OpenJob(args.state_dir, job_id, &store, &job)) return kExitFailed;
  auto tasks = store->Tasks(job.id);
  if (!tasks.ok()) {
    std::fprintf(stderr, "drover: %s\n", tasks.status().ToString().c_str());
    return kExitFailed;
  }
  const std::vector<const store::TaskRecord*> chosen = ChooseInstances(*tasks, task);
  if (chosen.empty()) {
    // A running job's tasks that have not started have no row yet.
    std::fprintf(stderr, "drover: job %s has no task '%s'%s\n", job.id.c_str(),
                 task.c_str(),
                 job.state == "running" ? " (or it has not started yet)" : "");
    return kExitFailed;
  }
  PrintOutputs(stdout, job.id, chosen, args.json);
  return kExitOk;
}

}  // namespace drover::cli
