#include "tools/cli/artifacts_cmd.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/artifacts/blob_store.h"
#include "core/artifacts/sha256.h"
#include "core/artifacts/transfer.h"
#include "core/spec/job_spec.h"
#include "core/store/store.h"
#include "tools/cli/commands.h"

namespace drover::cli {
namespace {
namespace fs = std::filesystem;

int Fail(const std::string& what) {
  std::fprintf(stderr, "drover: %s\n", what.c_str());
  return kExitFailed;
}

Result<std::unique_ptr<store::Store>> OpenState(const std::string& dir) {
  if (!fs::exists(fs::path(dir) / "state.db")) {
    return NotFound("no drover state in " + dir +
                    " (run a job first, or pass --state-dir)");
  }
  return store::Store::Open(dir);
}

Result<std::string> JobId(store::Store& store, const std::string& id) {
  if (!id.empty() && id != "latest") return id;
  auto latest = store.LatestJob();
  if (!latest.ok()) return latest.status();
  if (!*latest) return NotFound("no jobs in " + store.dir().string());
  return (*latest)->id;
}

int List(const ArtifactsArgs& a) {
  if (a.list.size() > 2) return Fail("usage: drover artifacts [JOB] [TASK]");
  auto store = OpenState(a.state_dir);
  if (!store.ok()) return Fail(store.status().message());
  // One argument is a task of the latest job unless it names a job.
  std::string job = a.list.size() >= 1 ? a.list[0] : "";
  std::string task = a.list.size() == 2 ? a.list[1] : "";
  if (a.list.size() == 1) {
    auto found = (*store)->GetJob(job);
    if (found.ok() && !*found) {
      task = job;
      job.clear();
    }
  }
  auto id = JobId(**store, job);
  if (!id.ok()) return Fail(id.status().message());
  auto rows = (*store)->Artifacts(*id, task);
  if (!rows.ok()) return Fail(rows.status().message());
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *rows) {
      out.push_back({{"job", r.job_id},
                     {"task", r.task},
                     {"path", r.path},
                     {"sha256", r.sha256},
                     {"size", r.size},
                     {"mode", r.mode},
                     {"attempt_id", r.attempt_id}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  if (rows->empty()) {
    std::printf("job %s: no artifacts%s\n", id->c_str(),
                task.empty() ? "" : (" of task " + task).c_str());
    return kExitOk;
  }
  std::printf("%-24s %-32s %12s  %s\n", "TASK", "PATH", "BYTES", "SHA256");
  for (const auto& r : *rows) {
    std::printf("%-24s %-32s %12llu  %s\n", r.task.c_str(), r.path.c_str(),
                static_cast<unsigned long long>(r.size), r.sha256.substr(0, 16).c_str());
  }
  return kExitOk;
}

// Writes what `fetch` gives to -o FILE (through a temporary file renamed
// at the end, so a failed get leaves no partial file) or to stdout.
template <typename Fetch>
int WriteOut(const ArtifactsArgs& a, Fetch fetch) {
  std::FILE* out = stdout;
  fs::path temp;
  if (!a.out.empty()) {
    temp = fs::path(a.out + ".drover-part");
    out = std::fopen(temp.c_str(), "wb");
    if (out == nullptr)
      return Fail("cannot write " + temp.string() + ": " + std::strerror(errno));
  }
  uint32_t mode = 0644;
  Status s = fetch(out, &mode);
  if (out != stdout) {
    if (std::fclose(out) != 0 && s.ok()) s = ErrnoError("write " + temp.string(), errno);
    std::error_code ec;
    if (!s.ok()) {
      fs::remove(temp, ec);
    } else {
      fs::permissions(temp, static_cast<fs::perms>(mode & 0777), ec);
      fs::rename(temp, a.out, ec);
      if (ec)
        s = IoError("rename " + temp.string() + " to " + a.out + ": " + ec.message());
    }
  } else {
    std::fflush(stdout);
  }
  return s.ok() ? kExitOk : Fail(s.message());
}

int GetLocal(const ArtifactsArgs& a) {
  auto store = OpenState(a.state_dir);
  if (!store.ok()) return Fail(store.status().message());
  auto id = JobId(**store, a.job);
  if (!id.ok()) return Fail(id.status().message());
  auto rows = (*store)->Artifacts(*id, a.task);
  if (!rows.ok()) return Fail(rows.status().message());
  const store::ArtifactRecord* found = nullptr;
  for (const auto& r : *rows) {
    if (r.path == a.path) found = &r;
  }
  if (found == nullptr) {
    return Fail("no artifact '" + a.path + "' of task '" + a.task + "' in job " + *id);
  }
  auto blobs = artifacts::BlobStore::Open(fs::path(a.state_dir) / "artifacts");
  if (!blobs.ok()) return Fail(blobs.status().message());
  const fs::path blob = (*blobs)->Path(found->sha256);
  return WriteOut(a, [&](std::FILE* out, uint32_t* mode) -> Status {
    *mode = found->mode;
    auto source = artifacts::ChunkSource::Open(blob);
    if (!source.ok()) return source.status();
    while (!(*source)->done()) {
      auto chunk = (*source)->Next();
      if (!chunk.ok()) return chunk.status();
      if (std::fwrite(chunk->data(), 1, chunk->size(), out) != chunk->size()) {
        return IoError("write failed");
      }
    }
    const std::string got = (*source)->Final();
    if (got != found->sha256) {
      return IoError("the stored blob " + found->sha256 + " is corrupt (it hashes to " +
                     got + ")");
    }
    return Status::Ok();
  });
}

int GetRemote(const ArtifactsArgs& a) {
  auto options = MakeClientOptions(a.connection);
  if (!options.ok()) {
    std::fprintf(stderr, "drover: %s\n", options.status().message().c_str());
    return kExitUsage;
  }
  zmq::context_t context(1);
  Client client(context, *options);
  if (Status s = client.Connect(); !s.ok()) return Fail(s.message());
  return WriteOut(a, [&](std::FILE* out, uint32_t* mode) -> Status {
    wire::ArtifactGet get;
    get.set_transfer_id(1);
    get.set_job_id(a.job);
    get.set_task(a.task);
    get.set_path(a.path);
    get.set_credit(artifacts::kWindow);
    auto first = client.Call(
        protocol::Make(protocol::Command::kArtifactGet, get),
        {protocol::Command::kArtifactChunk, protocol::Command::kArtifactDone});
    if (!first.ok()) return first.status();
    artifacts::Sha256 hash;
    uint64_t offset = 0;
    protocol::Message m = std::move(first.value());
    for (;;) {
      if (m.command == protocol::Command::kArtifactDone) {
        auto done = protocol::Parse<wire::ArtifactDone>(m);
        return FailedPrecondition(done.ok() ? done->error() : "transfer failed");
      }
      if (m.command == protocol::Command::kArtifactChunk) {
        auto chunk = protocol::Parse<wire::ArtifactChunk>(m);
        if (!chunk.ok() || m.payloads.size() != 1)
          return InvalidArgument("malformed chunk");
        if (chunk->offset() != offset) return InvalidArgument("chunk out of order");
        const std::string& data = m.payloads[0];
        hash.Update(data);
        offset += data.size();
        *mode = chunk->mode();
        if (std::fwrite(data.data(), 1, data.size(), out) != data.size()) {
          return IoError("write failed");
        }
        if (chunk->last()) {
          const std::string got = hash.Final();
          if (got != chunk->sha256() || offset != chunk->size()) {
            return IoError("the artifact arrived corrupt: it hashes to " + got +
                           ", the coordinator announced " + chunk->sha256());
          }
          return Status::Ok();
        }
        wire::ArtifactCredit credit;
        credit.set_transfer_id(1);
        credit.set_chunks(1);
        DROVER_RETURN_IF_ERROR(
            client.Send(protocol::Make(protocol::Command::kArtifactCredit, credit)));
      }
      for (;;) {
        auto event = client.Next(std::chrono::milliseconds(200), &m);
        if (!event.ok()) return event.status();
        if (*event == Client::Event::kMessage) break;
        if (*event == Client::Event::kLost) return Unavailable(client.NoAnswerMessage());
      }
    }
  });
}

int Gc(const ArtifactsArgs& a) {
  if (a.keep_last < 0 && a.older_than.empty()) {
    std::fprintf(stderr, "drover gc: give --keep-last N or --older-than AGE\n");
    return kExitUsage;
  }
  int64_t before_ms = 0;
  if (!a.older_than.empty()) {
    auto age = spec::ParseDuration(a.older_than);
    if (!age && !a.older_than.empty() && a.older_than.back() == 'd') {
      // Days: the unit gc is usually given in.
      try {
        age = std::chrono::hours(24) *
              std::stoll(a.older_than.substr(0, a.older_than.size() - 1));
      } catch (...) {
      }
    }
    if (!age) {
      std::fprintf(stderr,
                   "drover gc: --older-than %s is not a duration (7d, 12h, 30m)\n",
                   a.older_than.c_str());
      return kExitUsage;
    }
    before_ms = ToUnixMillis(std::chrono::system_clock::now()) -
                std::chrono::duration_cast<std::chrono::milliseconds>(*age).count();
  }
  // A blob younger than this is never collected: the coordinator may have
  // just stored it and not yet committed its index row.
  const auto min_age = a.min_age == "0" ? std::optional<Duration>(Duration(0))
                                        : spec::ParseDuration(a.min_age);
  if (!min_age) {
    std::fprintf(stderr, "drover gc: --min-age %s is not a duration\n",
                 a.min_age.c_str());
    return kExitUsage;
  }
  auto store = OpenState(a.state_dir);
  if (!store.ok()) return Fail(store.status().message());
  auto forgotten = (*store)->ForgetArtifacts(a.keep_last, before_ms);
  if (!forgotten.ok()) return Fail(forgotten.status().message());
  auto referenced = (*store)->ReferencedBlobs();
  if (!referenced.ok()) return Fail(referenced.status().message());
  auto blobs = artifacts::BlobStore::Open(fs::path(a.state_dir) / "artifacts");
  if (!blobs.ok()) return Fail(blobs.status().message());
  const std::set<std::string> keep(referenced->begin(), referenced->end());
  const auto removed = (*blobs)->RemoveUnreferenced(
      keep, std::chrono::duration_cast<std::chrono::seconds>(*min_age));
  const auto left = (*blobs)->Scan();
  std::printf(
      "gc: forgot %lld artifact rows, removed %llu blobs (%llu bytes); the store holds "
      "%llu blobs (%llu bytes)\n",
      static_cast<long long>(*forgotten), static_cast<unsigned long long>(removed.blobs),
      static_cast<unsigned long long>(removed.bytes),
      static_cast<unsigned long long>(left.blobs),
      static_cast<unsigned long long>(left.bytes));
  return kExitOk;
}

}  // namespace

ArtifactsSubcommands AddArtifactsCommands(CLI::App& app) {
  ArtifactsSubcommands c;
  c.args = std::make_shared<ArtifactsArgs>();
  ArtifactsArgs& a = *c.args;
  c.list = app.add_subcommand("artifacts", "List a job's artifacts, or get one");
  c.list->add_option("JOB_TASK", a.list, "[JOB] [TASK] (JOB: default the latest)")
      ->expected(0, 2);
  c.list->add_option("--state-dir", a.state_dir, "where state lives")
      ->capture_default_str();
  c.list->add_flag("--json", a.json, "print JSON");
  c.list->footer(
      "Lists the files each task's succeeded attempt stored (docs/spec.md, artifacts).\n"
      "Example:\n  drover artifacts\n  drover artifacts JOB build\n"
      "  drover artifacts get JOB build dist/app.tar -o app.tar");
  c.get = c.list->add_subcommand("get", "Write one artifact to a file or stdout");
  c.get->add_option("JOB", a.job, "job id ('latest' for the newest)")->required();
  c.get->add_option("TASK", a.task, "task instance")->required();
  c.get->add_option("PATH", a.path, "the artifact's path")->required();
  c.get->add_option("-o,--output", a.out, "file to write (default: stdout)");
  c.get->add_option("--state-dir", a.state_dir, "where state lives")
      ->capture_default_str();
  AddConnectionOptions(c.get, &a.connection);
  c.get->footer(
      "Reads --state-dir, or fetches through the coordinator when --coordinator (or\n"
      "DROVER_COORDINATOR) is given. The content's sha256 is checked; -o FILE appears\n"
      "only once it is whole.");
  c.gc = app.add_subcommand("gc", "Free the artifact store of old jobs' artifacts");
  c.gc->add_option("--keep-last", a.keep_last, "keep the artifacts of the N newest jobs")
      ->check(CLI::Range(0, 1000000));
  c.gc->add_option("--older-than", a.older_than,
                   "forget the artifacts of jobs created longer ago (7d, 12h, 30m)");
  c.gc->add_option("--min-age", a.min_age,
                   "keep blobs younger than this, which may not be indexed yet")
      ->capture_default_str();
  c.gc->add_option("--state-dir", a.state_dir, "where state lives")
      ->capture_default_str();
  c.gc->footer(
      "Forgets the index rows of those jobs, then removes every blob no row names\n"
      "(and older than --min-age). Safe while the coordinator runs.\n"
      "Example:\n  drover gc --keep-last 20\n  drover gc --older-than 7d");
  return c;
}

std::optional<int> RunArtifactsCommands(const ArtifactsSubcommands& c) {
  if (*c.get) {
    return c.args->connection.coordinator.empty() ? GetLocal(*c.args)
                                                  : GetRemote(*c.args);
  }
  if (*c.list) return List(*c.args);
  if (*c.gc) return Gc(*c.args);
  return std::nullopt;
}

}  // namespace drover::cli
