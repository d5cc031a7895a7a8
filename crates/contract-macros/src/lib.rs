//! `#[finite_floats]`: the contract's rule for optional floats, stated once instead of on every
//! field. Every `Option<f64>` field of the struct it marks gets
//! `#[serde(skip_serializing_if = "crate::num::skip_f64")]`, so the member is left out when it
//! is `None`, NaN or infinite: a schema `number` can hold neither `null` nor a non-finite value
//! (PROTOCOL.md §4.4). A field that already names its own `skip_serializing_if` keeps it.
//!
//! Place it above `#[skip_serializing_none]` (attribute macros expand outermost first), which
//! then leaves the marked fields alone and handles the other `Option` fields. Only for use
//! inside `ndefender-contract`: the path `crate::num::skip_f64` is that crate's.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, parse_quote, Data, DeriveInput, Fields, Type};

#[proc_macro_attribute]
pub fn finite_floats(attr: TokenStream, item: TokenStream) -> TokenStream {
    parse_macro_input!(attr as syn::parse::Nothing);
    let mut input = parse_macro_input!(item as DeriveInput);
    let Data::Struct(data) = &mut input.data else {
        return syn::Error::new_spanned(&input.ident, "#[finite_floats] marks a struct")
            .to_compile_error()
            .into();
    };
    let Fields::Named(fields) = &mut data.fields else {
        return syn::Error::new_spanned(&input.ident, "#[finite_floats] marks a struct with named fields")
            .to_compile_error()
            .into();
    };
    for f in fields.named.iter_mut() {
        if is_option_f64(&f.ty) && !has_skip_rule(&f.attrs) {
            f.attrs
                .push(parse_quote!(#[serde(skip_serializing_if = "crate::num::skip_f64")]));
        }
    }
    quote!(#input).into()
}

/// `Option<f64>`, however the path to `Option` is spelled.
fn is_option_f64(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let Some(last) = p.path.segments.last() else {
        return false;
    };
    if last.ident != "Option" {
        return false;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    matches!(
        args.args.first(),
        Some(syn::GenericArgument::Type(Type::Path(inner))) if args.args.len() == 1 && inner.path.is_ident("f64")
    )
}

/// True when a `#[serde(...)]` attribute of the field already says when to skip it.
fn has_skip_rule(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("serde")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().contains("skip_serializing_if"))
    })
}
