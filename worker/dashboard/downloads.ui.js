// Browser side: the download buttons. JSON comes from the final document the page holds
// (so it still works after the wipe); AIPerf JSON, CSV and report.html come from the
// server, with the read token in the Authorization header, as a blob saved under a name.

const SUFFIX = { json: ".json", aiperf: "-aiperf.json", csv: ".csv", report: "-report.html" };
const PATH = { json: "/results", aiperf: "/results?format=aiperf", csv: "/results?format=csv", report: "/report" };

/**
 * `held()` is the final results document once the page has it (else null); `fetch(path)`
 * fetches a path under the run's URL as a Blob, or throws an Error with a message.
 */
export function installDownloads({ runId, held, fetch }) {
  const status = document.getElementById("download-status");
  const download = async (format) => {
    const name = `edgeperf-${runId.slice(0, 12)}${SUFFIX[format] ?? ".json"}`;
    status.textContent = "";
    let blob;
    try {
      const doc = format === "json" ? held() : null;
      blob = doc ? new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }) : await fetch(PATH[format] ?? PATH.json);
    } catch (e) {
      status.textContent = `Download failed: ${e.message}`;
      return;
    }
    const url = URL.createObjectURL(blob);
    const a = Object.assign(document.createElement("a"), { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    status.textContent = `Saved ${name}`;
  };
  for (const b of document.querySelectorAll("button[data-format]")) b.addEventListener("click", () => download(b.dataset.format));
}
