//! Request bodies read as dockerd reads them. Go's encoding/json matches an
//! object key to a struct field by its exact name first, else to the first
//! field whose name equals the key without regard to case; serde matches
//! exactly and drops the rest silently. Clients rely on Go's rule (the
//! Python SDK sends `detachKeys` and `CPURealtimePeriod`), so berth renames
//! each key of an object read as a struct to the field Go would fill before
//! serde sees it. Objects read as maps (labels, options, endpoints by
//! network name) keep their keys.

use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, Error as _, IntoDeserializer,
    MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_json::{Error, Map, Value};

/// A request body as `T`, its keys matched to `T`'s fields as Go matches
/// them. Errors are serde_json's, with the line and column a direct parse
/// names whenever a direct parse fails too.
pub fn from_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        // a Value cannot hold what serde skips unread (invalid UTF-8 in an
        // unknown field's string): such a body reads as it did before
        Err(_) => return serde_json::from_slice(body),
    };
    from_value(value).map_err(|e| serde_json::from_slice::<T>(body).err().unwrap_or(e))
}

/// A JSON value as `T`, its keys matched to `T`'s fields as Go matches them.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    T::deserialize(Folded(value))
}

/// The field of `fields` Go's decoder fills from `key`: the exact name,
/// else the first equal under its case folding; None when no field takes
/// the key.
fn field_for<'f>(key: &str, fields: &[&'f str]) -> Option<&'f str> {
    if let Some(f) = fields.iter().find(|f| **f == key) {
        return Some(f);
    }
    fields.iter().copied().find(|f| same_folded(f, key))
}

fn same_folded(a: &str, b: &str) -> bool {
    a.chars().map(go_fold).eq(b.chars().map(go_fold))
}

/// encoding/json's fold of one rune: upper(lower(r)). Field names are
/// ASCII, so besides ASCII letters only the runes that fold to an ASCII
/// letter can make a match; any other rune is kept and matches nothing.
fn go_fold(c: char) -> char {
    match c {
        'a'..='z' => c.to_ascii_uppercase(),
        // long s, Kelvin sign, dotted capital I, dotless small i
        '\u{17f}' => 'S',
        '\u{212a}' => 'K',
        '\u{130}' | '\u{131}' => 'I',
        _ => c,
    }
}

/// An object read as a struct, its keys renamed to the fields they fill.
/// Go lets the later of two keys for one field win; so does the insert.
fn rename_keys(object: Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::with_capacity(object.len());
    for (key, value) in object {
        let key = match field_for(&key, fields) {
            Some(f) if f != key => f.to_string(),
            _ => key,
        };
        out.insert(key, value);
    }
    out
}

/// A JSON value whose nested values are read with the same rule.
struct Folded(Value);

macro_rules! as_value {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.0.$method(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for Folded {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(object) => visit_object(object, visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Folded(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(object) => visit_object(object, visitor),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(object) => visit_object(rename_keys(object, fields), visitor),
            Value::Array(items) => visit_array(items, visitor),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(Variant {
                name: variant,
                value: None,
            }),
            Value::Object(object) if object.len() == 1 => {
                let Some((variant, value)) = object.into_iter().next() else {
                    return Err(Error::custom("an enum object lost its key"));
                };
                visitor.visit_enum(Variant {
                    name: variant,
                    value: Some(value),
                })
            }
            // serde_json's own words for what cannot be an enum
            other => other.deserialize_enum(name, variants, visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    as_value!(
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier deserialize_ignored_any
    );
}

/// An array's items, each read with the rule; like serde_json, an array
/// longer than the visitor takes is an error.
fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let len = items.len();
    let mut seq = Items(items.into_iter());
    let out = visitor.visit_seq(&mut seq)?;
    if seq.0.len() == 0 {
        Ok(out)
    } else {
        Err(Error::invalid_length(len, &"fewer elements in array"))
    }
}

/// An object's entries, keys as given and values read with the rule.
fn visit_object<'de, V: Visitor<'de>>(
    object: Map<String, Value>,
    visitor: V,
) -> Result<V::Value, Error> {
    let len = object.len();
    let mut entries = Entries {
        iter: object.into_iter(),
        value: None,
    };
    let out = visitor.visit_map(&mut entries)?;
    if entries.iter.len() == 0 {
        Ok(out)
    } else {
        Err(Error::invalid_length(len, &"fewer elements in map"))
    }
}

struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Folded(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key: serde::de::value::StringDeserializer<Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(Folded(v)),
            None => Err(Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An enum as serde_json writes one: a variant's name, or an object of
/// one key holding the variant's content.
struct Variant {
    name: String,
    value: Option<Value>,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = Error;
    type Variant = Content;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Content), Error> {
        let name: serde::de::value::StringDeserializer<Error> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, Content(self.value)))
    }
}

struct Content(Option<Value>);

impl<'de> VariantAccess<'de> for Content {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            None => Ok(()),
            Some(v) => serde::Deserialize::deserialize(Folded(v)),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        match self.0 {
            Some(v) => seed.deserialize(Folded(v)),
            None => Err(Error::invalid_type(
                serde::de::Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Some(v) => Folded(v).deserialize_seq(visitor),
            None => Err(Error::invalid_type(
                serde::de::Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Some(v) => Folded(v).deserialize_struct("", fields, visitor),
            None => Err(Error::invalid_type(
                serde::de::Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard_stubs::models::{
        ContainerCreateBody, ExecConfig, MountType, RestartPolicyNameEnum,
    };
    use serde::Deserialize;
    use serde_json::json;

    use super::{from_body, from_value, same_folded};

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Two {
        #[serde(rename = "Name")]
        name: Option<String>,
        #[serde(rename = "NAME")]
        shout: Option<String>,
    }

    #[test]
    fn an_exact_name_wins_else_the_first_field_that_folds_equal() {
        let t: Two = from_value(json!({"name": "a"})).unwrap();
        assert_eq!(t.name.as_deref(), Some("a"));
        assert_eq!(t.shout, None);
        let t: Two = from_value(json!({"NAME": "b", "nAmE": "a"})).unwrap();
        assert_eq!(
            (t.name.as_deref(), t.shout.as_deref()),
            (Some("a"), Some("b"))
        );
        // two keys for one field: the later one, as encoding/json
        let t: Two = from_value(json!({"Name": "x", "name": "y"})).unwrap();
        assert_eq!(t.name.as_deref(), Some("y"));
        let t: Two = from_value(json!({"name": "y", "Name": "x"})).unwrap();
        assert_eq!(t.name.as_deref(), Some("x"));
        let t: Two = from_value(json!({"Nom": "z"})).unwrap();
        assert_eq!(t, Two::default());
    }

    #[test]
    fn runes_fold_as_go_folds_them() {
        assert!(same_folded("Hostname", "hoſtname"));
        assert!(same_folded("Kernel", "\u{212a}ernel"));
        assert!(same_folded("ID", "\u{130}d"));
        assert!(same_folded("Image", "\u{131}mage"));
        assert!(!same_folded("Image", "Imag"));
        assert!(!same_folded("Image", "Imagé"));
        let e: ExecConfig = from_value(json!({"detach\u{212a}eys": "ctrl-x"})).unwrap();
        assert_eq!(e.detach_keys.as_deref(), Some("ctrl-x"));
    }

    #[test]
    fn nested_structs_fold_and_maps_keep_their_keys() {
        let body = json!({
            "image": "busybox",
            "cmd": ["true"],
            "labels": {"MixedCase": "v", "lower": "w"},
            "hostconfig": {
                "memory": 1024,
                "CPURealtimePeriod": 5,
                "cpuRealtimeRuntime": 6,
                "restartpolicy": {"name": "always", "maximumretrycount": 0},
                "mounts": [{"type": "bind", "source": "/a", "target": "/b"}],
                "logconfig": {"type": "json-file", "config": {"max-size": "1m"}},
            },
            "networkingconfig": {"endpointsconfig": {"MyNet": {
                "aliases": ["x"],
                "ipamconfig": {"ipv4address": "10.0.0.2"},
            }}},
        });
        let c: ContainerCreateBody = from_value(body).unwrap();
        assert_eq!(c.image.as_deref(), Some("busybox"));
        assert_eq!(c.cmd, Some(vec!["true".to_string()]));
        let labels = c.labels.unwrap();
        assert_eq!(labels.get("MixedCase").map(String::as_str), Some("v"));
        assert_eq!(labels.get("lower").map(String::as_str), Some("w"));
        let h = c.host_config.unwrap();
        assert_eq!(h.memory, Some(1024));
        assert_eq!(h.cpu_realtime_period, Some(5));
        assert_eq!(h.cpu_realtime_runtime, Some(6));
        let rp = h.restart_policy.unwrap();
        assert_eq!(rp.name, Some(RestartPolicyNameEnum::ALWAYS));
        let m = &h.mounts.unwrap()[0];
        assert_eq!(m.typ, Some(MountType::BIND));
        assert_eq!(m.target.as_deref(), Some("/b"));
        let log = h.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let opts = log.config.unwrap();
        assert_eq!(opts.get("max-size").map(String::as_str), Some("1m"));
        let eps = c.networking_config.unwrap().endpoints_config.unwrap();
        let ep = eps.get("MyNet").expect("the network's name as given");
        assert_eq!(ep.aliases, Some(vec!["x".to_string()]));
        let ipam = ep.ipam_config.as_ref().unwrap();
        assert_eq!(ipam.ipv4_address.as_deref(), Some("10.0.0.2"));
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Inner {
        #[serde(rename = "Size")]
        size: u8,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Shape {
        Unit,
        Wrapped(Inner),
        Pair(u8, u8),
        Fields {
            #[serde(rename = "Size")]
            size: u8,
        },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Outer {
        #[serde(rename = "Items")]
        items: Vec<Inner>,
        #[serde(rename = "Maybe")]
        maybe: Option<Inner>,
        #[serde(rename = "ByName")]
        by_name: HashMap<String, Inner>,
        #[serde(rename = "Shapes")]
        shapes: Vec<Shape>,
        #[serde(rename = "Tuple")]
        tuple: (u8, Inner),
    }

    #[test]
    fn sequences_options_and_enums_fold_inside() {
        let o: Outer = from_value(json!({
            "items": [{"size": 1}, {"SIZE": 2}],
            "maybe": {"sIze": 3},
            "byname": {"size": {"size": 4}},
            "shapes": ["Unit", {"Wrapped": {"size": 5}}, {"Pair": [6, 7]}, {"Fields": {"size": 8}}],
            "tuple": [9, {"size": 10}],
        }))
        .unwrap();
        assert_eq!(o.items, vec![Inner { size: 1 }, Inner { size: 2 }]);
        assert_eq!(o.maybe, Some(Inner { size: 3 }));
        assert_eq!(o.by_name.get("size"), Some(&Inner { size: 4 }));
        assert_eq!(
            o.shapes,
            vec![
                Shape::Unit,
                Shape::Wrapped(Inner { size: 5 }),
                Shape::Pair(6, 7),
                Shape::Fields { size: 8 },
            ]
        );
        assert_eq!(o.tuple, (9, Inner { size: 10 }));
        let none: Option<Inner> = from_value(json!(null)).unwrap();
        assert_eq!(none, None);
        // enum variants and string values are matched exactly, as in Go
        assert!(from_value::<Shape>(json!("unit")).is_err());
        assert!(from_value::<RestartPolicyNameEnum>(json!("Always")).is_err());
        assert!(from_value::<(u8,)>(json!([1, 2])).is_err());
    }

    #[test]
    fn errors_keep_serde_jsons_words_and_position() {
        for body in [
            &br#"{bad"#[..],
            br#"{"Image": 42}"#,
            br#"{"Image": "a"} x"#,
            b"",
        ] {
            let want = serde_json::from_slice::<ContainerCreateBody>(body).unwrap_err();
            let got = from_body::<ContainerCreateBody>(body).unwrap_err();
            assert_eq!(got.to_string(), want.to_string());
        }
        // a wrong type only the folded key reaches is still an error
        let e = from_body::<ContainerCreateBody>(br#"{"image": 42}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid type: integer `42`"),
            "{e}"
        );
        let e = from_body::<ContainerCreateBody>(br#"{"hostConfig": {"memory": "x"}}"#);
        assert!(e.is_err());
    }

    #[test]
    fn a_body_a_value_cannot_hold_reads_as_before() {
        // invalid UTF-8 in a string berth never reads
        let body = b"{\"Image\": \"busybox\", \"Junk\": \"\xff\"}";
        let c: ContainerCreateBody = from_body(body).unwrap();
        assert_eq!(c.image.as_deref(), Some("busybox"));
    }
}
