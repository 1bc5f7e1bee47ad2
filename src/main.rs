//! `bedrock-denied-models`: `scan PATH...` offline, or the Lambda function when
//! started by the Lambda runtime (see `cli`).

fn main() -> std::process::ExitCode {
    bedrock_denied_models::cli::main()
}
