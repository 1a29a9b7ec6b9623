import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { projectRoot } from '../project-root';
import { createDashboardPages } from './dashboard-page';
import { createStaticFiles } from './static-files';

/** Every asset GraphiQL needs, served from node_modules: the page works with no internet. */
const assetFiles = {
  'react.production.min.js': path.join(path.dirname(require.resolve('react')), 'umd/react.production.min.js'),
  'react-dom.production.min.js': path.join(path.dirname(require.resolve('react-dom')), 'umd/react-dom.production.min.js'),
  'graphiql.min.js': path.join(path.dirname(require.resolve('graphiql')), '../graphiql.min.js'),
  'graphiql.min.css': path.join(path.dirname(require.resolve('graphiql')), '../graphiql.min.css'),
  'graphiql-init.js': path.join(projectRoot, 'src/web/graphiql-init.js'),
} as const;

export const assetPrefix = '/graphiql/';

// Inline styles are GraphiQL's own; scripts and connections stay on this origin.
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export const exampleDocument = `# Welcome to LLMOP. Press the run button (or Ctrl-Enter) and pick an operation.
# The docs explorer (the book icon) describes every type, field and argument.

query Overview {
  health {
    status
    version
    timestamp
  }
  models {
    count
    models {
      id
      name
      type
      provider
      status
    }
  }
}

# Who spent what: every generation is in the ledger. Admins see everyone; members see their own.
query Spend {
  usage(group_by: model) {
    group_by
    rows {
      group
      requests
      failed
      total_tokens
      cost_usd
    }
    totals {
      requests
      cost_usd
    }
  }
  generations(limit: 5) {
    generations {
      id
      caller
      model_id
      status
      cost_usd
      created_at
    }
    next_cursor
  }
}

# The demo model is a tiny generated fixture: it answers gibberish, offline, deterministically.
mutation GenerateWithDemoModel {
  generate(prompt: "The weather today is", model_id: "llmop-demo-tiny", max_tokens: 16, temperature: 0) {
    text
    metrics {
      latency_ms
      input_tokens
      output_tokens
      total_tokens
    }
    metadata {
      generation_id
      finish_reason
      provider
      cost_usd {
        total
      }
    }
  }
}

# The same, as it is generated: each event carries the next text, the last one the whole answer.
# Subscriptions run over WebSocket at /graphql (or server-sent events at /graphql/stream).
subscription StreamWithDemoModel {
  generate_stream(prompt: "The weather today is", model_id: "llmop-demo-tiny", max_tokens: 16, temperature: 0) {
    text
    response {
      metrics {
        output_tokens
      }
      metadata {
        generation_id
        finish_reason
      }
    }
  }
}

# Rate an answer: paste a generation_id (from an answer's metadata, or from Spend). A correction
# becomes training data: GET /api/v1/feedback/export?format=chat downloads it as JSON Lines.
mutation RateAnswer {
  submit_feedback(generation_id: "paste-a-generation-id", thumbs: down, correction: "What the answer should have been", tags: ["example"]) {
    id
    created_at
  }
}

# What reviewers said, per model (or per prompt version: group_by: prompt).
query Feedback {
  feedback_summary(group_by: model) {
    rows {
      group
      count
      mean_score
      thumbs_up
      thumbs_down
      corrections
    }
  }
  generations(limit: 5) {
    generations {
      id
      prompt
      text
      feedback {
        caller
        score
        thumbs
        correction
      }
    }
  }
}

# Which prompt is best, on which model, for the money: save two versions of a prompt, a dataset of
# test cases, and start a run (it works in the background; follow it with EvaluationProgress).
mutation ComparePrompts {
  v1: create_prompt_version(name: "greet", template: "Say hello to {{name}}.", model_id: "llmop-demo-tiny") {
    version
  }
  v2: create_prompt_version(name: "greet", template: "Write a warm one-line welcome for {{name}}.", model_id: "llmop-demo-tiny") {
    version
  }
  create_dataset(name: "names", items: [{ variables: { name: "Ada" }, expected: "Hello, Ada!" }, { variables: { name: "Grace" }, expected: "Hello, Grace!" }]) {
    id
  }
}

# Paste the dataset id and the two versions from ComparePrompts.
mutation StartEvaluation {
  start_evaluation(
    dataset_id: "paste-a-dataset-id"
    prompts: [{ name: "greet", version: 1 }, { name: "greet", version: 2 }]
    model_ids: ["llmop-demo-tiny"]
    scorers: [{ type: similarity }, { type: contains, name: "names them", value: "a" }]
    max_tokens: 12
    temperature: 0
  ) {
    id
    status
  }
}

query EvaluationProgress {
  evaluations(limit: 1) {
    evaluations {
      id
      status
      progress {
        total
        completed
        failed
      }
      variants {
        prompt {
          name
          version
        }
        model_id
        pass_rate
        mean_score
        scores
        cost_usd
      }
      best {
        prompt {
          version
        }
        model_id
      }
    }
  }
}
`;

export interface WebPagesSettings {
  readonly version: string;
  /** With API keys on, GraphiQL opens its headers tab with an Authorization template. */
  readonly authEnabled: boolean;
}

const escapeJsonForHtml = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

function graphiqlPage(settings: WebPagesSettings): string {
  const pageSettings = {
    endpoint: '/graphql',
    exampleDocument,
    defaultHeaders: settings.authEnabled ? JSON.stringify({ Authorization: 'Bearer YOUR_API_KEY' }, null, 2) : undefined,
  };
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>LLMOP GraphiQL</title>
  <link rel="stylesheet" href="${assetPrefix}graphiql.min.css">
  <style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script type="application/json" id="llmop-graphiql-settings">${escapeJsonForHtml(pageSettings)}</script>
  <script src="${assetPrefix}react.production.min.js"></script>
  <script src="${assetPrefix}react-dom.production.min.js"></script>
  <script src="${assetPrefix}graphiql.min.js"></script>
  <script src="${assetPrefix}graphiql-init.js"></script>
</body>
</html>
`;
}

function landingPage(settings: WebPagesSettings): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>LLMOP</title>
  <style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; } code { background: #f3f3f3; padding: 0 .25rem; }</style>
</head>
<body>
  <h1>LLMOP <small>${settings.version}</small></h1>
  <p>The LLM Optimization Platform API: one front door to commercial, self-hosted and local fine-tuned models.</p>
  <ul>
    <li><a href="/graphql">GraphiQL</a>: explore the GraphQL API (<code>POST /graphql</code>)</li>
    <li><a href="/dashboard">Dashboard</a>: traffic, latency, tokens and spend, budgets, feedback and evaluation runs</li>
    <li><a href="/api/v1/openapi.json">OpenAPI document</a> (<a href="/api/v1/openapi.yaml">YAML</a>) of the REST API under <code>/api/v1</code></li>
    <li><a href="/api/v1/health">Health</a> and <a href="/api/v1/ready">readiness</a></li>
  </ul>
  ${settings.authEnabled ? '<p>API keys are required: send <code>Authorization: Bearer &lt;key&gt;</code>.</p>' : ''}
</body>
</html>
`;
}

/** Whether a GET /graphql comes from a browser that wants the page rather than a GraphQL answer. */
export function wantsHtml(request: IncomingMessage): boolean {
  const accept = request.headers.accept ?? '';
  return (request.method === 'GET' || request.method === 'HEAD') && accept.includes('text/html') && !accept.includes('application/json');
}

/** GET /, the GraphiQL page and its assets: public, no key needed. Returns false when the path is not ours. */
export function createWebPages(settings: WebPagesSettings) {
  const pages = { graphiql: graphiqlPage(settings), landing: landingPage(settings) };
  // GET /dashboard and its files (src/web/dashboard-page.ts), with a policy of their own: 'self' only.
  const dashboard = createDashboardPages(settings);
  const assets = createStaticFiles(assetPrefix, assetFiles);

  const sendHtml = (response: ServerResponse, html: string): void => {
    response.statusCode = 200;
    response.setHeader('content-type', 'text/html; charset=utf-8');
    response.setHeader('content-security-policy', contentSecurityPolicy);
    response.setHeader('x-content-type-options', 'nosniff');
    response.end(html);
  };

  return async (request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    if (await dashboard(request, response, pathname)) return true;
    if (pathname === '/') {
      sendHtml(response, pages.landing);
      return true;
    }
    if (pathname === '/graphql' && wantsHtml(request)) {
      sendHtml(response, pages.graphiql);
      return true;
    }
    return assets(response, pathname);
  };
}
