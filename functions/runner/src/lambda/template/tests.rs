//! The template reader on small templates.

use super::*;
use serde_json::json;

#[test]
fn output_names_become_env_names_as_provision_prints_them() {
    assert_eq!(upper_snake("EventsQueueUrl"), "EVENTS_QUEUE_URL");
    assert_eq!(upper_snake("ApiKeysTableArn"), "API_KEYS_TABLE_ARN");
    assert_eq!(upper_snake("SQSUrl"), "SQS_URL");
    assert_eq!(upper_snake("Table2Name"), "TABLE2_NAME");
}

fn template() -> Value {
    json!({
        "Parameters": {"Schedule": {"Type": "String", "Default": "1,2"}, "Reserved": {"Type": "Number", "Default": 0, "MinValue": 0, "MaxValue": 10}},
        "Conditions": {"HasReserved": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Reserved"}, 0]}]}},
        "Resources": {
            "F": {"Type": "AWS::Lambda::Function", "Properties": {
                "Timeout": 7, "Role": {"Fn::GetAtt": ["FRole", "Arn"]},
                "ReservedConcurrentExecutions": {"Fn::If": ["HasReserved", {"Ref": "Reserved"}, {"Ref": "AWS::NoValue"}]},
                "Environment": {"Variables": {"Q": {"Fn::GetAtt": ["Data", "Outputs.EventsQueueUrl"]}, "S": {"Ref": "Schedule"}, "N": 5,
                    "X": {"Fn::Sub": "${Data.Outputs.EventsQueueUrl}/${AWS::Region}/${Schedule}"}}}}},
            "FRole": {"Type": "AWS::IAM::Role", "Properties": {"ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
                "Policies": [{"PolicyName": "P", "PolicyDocument": {"Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "dynamodb:GetItem",
                    "Resource": {"Fn::Sub": "${Data.Outputs.EventsQueueUrl}/index/x"}}]}}]}},
            "M": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {"BatchSize": 10, "EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:q",
                "FunctionName": {"Ref": "F"}, "FunctionResponseTypes": ["ReportBatchItemFailures"], "ScalingConfig": {"MaximumConcurrency": {"Ref": "Reserved"}}}},
            "R": {"Type": "AWS::Events::Rule", "Properties": {"ScheduleExpression": "rate(5 minutes)", "Targets": [{"Arn": {"Fn::GetAtt": ["F", "Arn"]}, "Id": "t"}]}},
            "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"Body": {"paths": {
                "/v1/{proxy+}": {"x-amazon-apigateway-any-method": {"x-amazon-apigateway-integration": {"uri": {"Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${F.Arn}/invocations"}}}},
                "/console": {"get": {"x-amazon-apigateway-integration": {"uri": {"Fn::Sub": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/${F.Arn}/invocations"}}}}}}}}
        }
    })
}

#[test]
fn a_deployment_is_resolved_against_parameters_and_the_stacks_outputs() {
    let outputs = HashMap::from([("EVENTS_QUEUE_URL".to_owned(), "http://q".to_owned())]);
    let d = Deployment::resolve(&template(), &HashMap::from([("Schedule".to_owned(), "5".to_owned())]), &outputs, "s").unwrap();
    let f = &d.functions["F"];
    let env: HashMap<_, _> = f.env.iter().cloned().collect();
    assert_eq!((env["Q"].as_str(), env["S"].as_str(), env["N"].as_str(), env["X"].as_str()), ("http://q", "5", "5", "http://q/us-east-1/5"));
    assert_eq!(f.timeout, Duration::from_secs(7));
    assert_eq!((d.queues[0].function.as_str(), d.queues[0].max_concurrency, d.queues[0].report_batch_item_failures), ("F", Some(0), true));
    assert_eq!((d.schedules[0].function.as_str(), d.schedules[0].every), ("F", Duration::from_secs(300)));
    let role = &d.roles["F"];
    assert_eq!((role.statements[0].actions.clone(), role.statements[0].resources.clone()), (vec!["dynamodb:GetItem".to_owned()], vec!["http://q/index/x".to_owned()]));
    let (route, params) = d.route("POST", "/v1/subscriptions/x").unwrap();
    assert_eq!((route.key(), params), ("ANY /v1/{proxy+}".to_owned(), vec![("proxy".to_owned(), "subscriptions/x".to_owned())]));
    assert_eq!(d.route("GET", "/console").unwrap().0.key(), "GET /console");
    assert!(d.route("POST", "/console").is_none());
    assert!(d.route("GET", "/").is_none());
}

#[test]
fn unknown_parameters_outputs_and_intrinsics_are_errors_naming_them() {
    let outputs = HashMap::new();
    let e = Deployment::resolve(&template(), &HashMap::new(), &outputs, "s").unwrap_err();
    assert!(e.to_string().contains("EventsQueueUrl"), "{e}");
    let e = Deployment::resolve(&template(), &HashMap::from([("Nope".to_owned(), "1".to_owned())]), &outputs, "s").unwrap_err();
    assert!(e.to_string().contains("Nope"), "{e}");
    let e = Deployment::resolve(&template(), &HashMap::from([("Reserved".to_owned(), "11".to_owned())]), &outputs, "s").unwrap_err();
    assert!(e.to_string().contains("Reserved: 11 is outside"), "{e}");
    let mut t = template();
    t["Resources"]["F"]["Properties"]["Timeout"] = json!({"Fn::ImportValue": "x"});
    let outputs = HashMap::from([("EVENTS_QUEUE_URL".to_owned(), "http://q".to_owned())]);
    let e = Deployment::resolve(&t, &HashMap::new(), &outputs, "s").unwrap_err();
    assert!(e.to_string().contains("Fn::ImportValue"), "{e}");
}
