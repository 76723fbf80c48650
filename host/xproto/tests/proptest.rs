//! Property tests: the lexer and parser never panic, whatever the input, and
//! `fmt` output always reads back as the same IR.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::without_locations;

use proptest::prelude::*;
use syncplane_xproto::{
    Diagnostic, Enum, EnumValue, Field, FieldType, File, LinkKind, Location, Model, Modifier,
    OptionValue, Options, ProtoScalar, ScalarType, format_file, format_source, parse, parse_full,
    render,
};

/// When `src` parses, its formatted text parses to the same IR and
/// formatting that text again changes nothing.
fn assert_fmt_round_trips(src: &str) -> Result<(), TestCaseError> {
    let Ok(before) = parse("p.xproto", src) else {
        return Ok(());
    };
    let once = format_source("p.xproto", src).expect("it parsed once");
    let after = parse("p.xproto", &once)
        .map_err(|e| TestCaseError::fail(format!("fmt output does not parse: {e}\n{once}")))?;
    prop_assert_eq!(
        without_locations(&before),
        without_locations(&after),
        "{}",
        once
    );
    let twice = format_source("p.xproto", &once).expect("parses");
    prop_assert_eq!(&once, &twice);
    Ok(())
}

/// Parses `src` and renders its error or warnings with snippets, as
/// `xproto check` does; none of it may panic, and a rendered error names
/// its place.
fn render_outcome(src: &str) {
    let sources = BTreeMap::from([("p.xproto".to_owned(), src.to_owned())]);
    let diagnostics: Vec<Diagnostic> = match parse_full("p.xproto", src) {
        Ok(parsed) => parsed.warnings.iter().map(Diagnostic::from).collect(),
        Err(e) => vec![Diagnostic::from(&e)],
    };
    let text = render(&diagnostics, &sources, false);
    for d in &diagnostics {
        assert!(text.contains(&d.location.to_string()), "{text}");
    }
}

fn corpus() -> &'static [String] {
    static FILES: OnceLock<Vec<String>> = OnceLock::new();
    FILES.get_or_init(|| {
        let root = common::corpus().join("xproto");
        common::xproto_files(&root)
            .into_iter()
            .map(|name| std::fs::read_to_string(root.join(name)).expect("read"))
            .collect()
    })
}

/// The largest char boundary of `s` at or below `i`.
fn floor(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Text made of the characters xproto is written with, so the parser gets
/// past the lexer and deep into its rules.
const XPROTO_CHARS: &str = r#"[ \n\tA-Za-z0-9_;=(){}\[\],:<>/+*&|.!%"'-]{0,300}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(src in any::<String>()) {
        render_outcome(&src);
    }

    #[test]
    fn xproto_like_text_never_panics_and_formats_faithfully(src in XPROTO_CHARS) {
        render_outcome(&src);
        assert_fmt_round_trips(&src)?;
    }

    #[test]
    fn mutated_corpus_files_never_panic_and_format_faithfully(
        file in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..40,
        insert in r#"[ \n;=(){}\[\]:<>/+"'a-z0-9]{0,6}|//[a-z ]{0,5}\n|/\*|\*/"#,
    ) {
        let files = corpus();
        let src = &files[file.index(files.len())];
        let start = floor(src, at.index(src.len() + 1));
        let end = floor(src, start + cut);
        let mutated = format!("{}{insert}{}", &src[..start], &src[end..]);
        assert_fmt_round_trips(&mutated)?;
    }

    #[test]
    fn generated_models_round_trip_through_fmt(file in file()) {
        let text = format_file(&file);
        let back = parse(&file.name, &text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(without_locations(&file), without_locations(&back), "{}", text);
        prop_assert_eq!(format_file(&back), text);
    }
}

fn here() -> Location {
    Location {
        file: "gen.xproto".into(),
        line: 1,
        column: 1,
    }
}

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,8}"
}

fn model_name() -> impl Strategy<Value = String> {
    "[A-Z][A-Za-z0-9_]{0,8}"
}

fn value() -> impl Strategy<Value = OptionValue> {
    prop_oneof![
        any::<bool>().prop_map(OptionValue::Bool),
        any::<i64>().prop_map(OptionValue::Int),
        (-1.0e12f64..1.0e12).prop_map(OptionValue::Float),
        (0.0f64..1.0e-3).prop_map(OptionValue::Float),
        any::<String>().prop_map(OptionValue::Str),
        Just(OptionValue::Ident(None)),
        ident()
            .prop_filter("reads back as a bool", |s| s != "true" && s != "false")
            .prop_map(|s| OptionValue::Ident(Some(s))),
    ]
}

fn options(max: usize) -> impl Strategy<Value = Options> {
    prop::collection::btree_map(ident(), value(), 0..max)
}

fn enumeration() -> impl Strategy<Value = Enum> {
    (
        model_name(),
        // Constant names are unique within an enum.
        prop::collection::btree_map("[A-Z][A-Z0-9_]{0,6}", any::<i64>(), 0..4),
    )
        .prop_map(|(name, values)| Enum {
            name,
            values: values
                .into_iter()
                .map(|(name, number)| EnumValue {
                    name,
                    number,
                    location: here(),
                })
                .collect(),
            location: here(),
        })
}

/// Keeps the first enum of each name: names are unique within a scope.
fn unique_names(enums: &mut Vec<Enum>) {
    let mut seen = std::collections::BTreeSet::new();
    enums.retain(|e| seen.insert(e.name.clone()));
}

fn field_type() -> impl Strategy<Value = FieldType> {
    prop_oneof![
        prop_oneof![
            Just(ScalarType::String),
            Just(ScalarType::Bool),
            Just(ScalarType::Int),
            Just(ScalarType::Float),
        ]
        .prop_map(|scalar| FieldType::Scalar { scalar }),
        (
            prop_oneof![
                Just(LinkKind::ManyToOne),
                Just(LinkKind::OneToOne),
                Just(LinkKind::ManyToMany)
            ],
            model_name(),
            prop::option::of(prop_oneof![Just("+".to_owned()), ident()]),
            prop::option::of(model_name()),
        )
            .prop_map(|(link, target, reverse, through)| FieldType::Link {
                link,
                target,
                reverse,
                through,
            }),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    (
        ident(),
        prop_oneof![Just(Modifier::Required), Just(Modifier::Optional)],
        any::<bool>(),
        field_type(),
        any::<i64>(),
        prop::option::of(any::<i64>()),
        options(4),
    )
        .prop_map(
            |(name, modifier, repeated, ty, number, reverse_number, options)| Field {
                name,
                // `repeated` replaces the modifier in the source.
                modifier: if repeated {
                    Modifier::Optional
                } else {
                    modifier
                },
                repeated,
                reverse_number: reverse_number.filter(|_| matches!(ty, FieldType::Link { .. })),
                // The parser keeps the type as written; `fmt` writes a
                // class's default name.
                proto_type: match ty {
                    FieldType::Scalar { scalar } => Some(ProtoScalar::of_class(scalar)),
                    FieldType::Link { .. } => None,
                },
                ty,
                number,
                options,
                enum_type: None,
                location: here(),
            },
        )
}

fn model() -> impl Strategy<Value = Model> {
    (
        model_name(),
        prop::option::of(ident()),
        prop::collection::vec(model_name(), 0..3),
        options(4),
        prop::collection::vec(field(), 0..6),
        prop::collection::vec(enumeration(), 0..2),
        any::<prop::sample::Index>(),
    )
        .prop_map(
            |(name, policy, bases, options, mut fields, mut enums, pick)| {
                unique_names(&mut enums);
                // One field typed with the message's first enum, when it has one.
                if let (Some(e), false) = (enums.first(), fields.is_empty()) {
                    let i = pick.index(fields.len());
                    let f = &mut fields[i];
                    f.ty = FieldType::Scalar {
                        scalar: ScalarType::Int,
                    };
                    f.reverse_number = None;
                    f.enum_type = Some(e.name.clone());
                    f.proto_type = None;
                }
                Model {
                    name,
                    policy,
                    bases,
                    options,
                    fields,
                    app_label: String::new(),
                    enums,
                    location: here(),
                }
            },
        )
}

prop_compose! {
    fn file()(
        options in options(4),
        models in prop::collection::vec(model(), 0..4),
        enums in prop::collection::vec(enumeration(), 0..2),
    ) -> File {
        let mut file = File {
            name: "gen.xproto".into(),
            options,
            policies: Vec::new(),
            models,
            enums,
        };
        unique_names(&mut file.enums);
        let label = file.app_label().unwrap_or("core").to_owned();
        for m in &mut file.models {
            m.app_label = label.clone();
        }
        file
    }
}
