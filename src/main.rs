//! `bedrock-denied-models`: the Lambda function when started by the Lambda runtime
//! with no arguments (AWS build), else the command line (`scan`, ...).

fn main() -> std::process::ExitCode {
    #[cfg(feature = "aws")]
    if std::env::args_os().len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return bedrock_denied_models::lambda::main();
    }
    bedrock_denied_models::cli::main()
}
