//! The API's records, as Hotmart documents them. Dates are epoch milliseconds; a value
//! small enough to be seconds (one published example has them) is converted, never read
//! as 1970.

use serde::{Deserialize, Deserializer, Serialize};

/// Epoch milliseconds.
pub type Millis = i64;

/// Below this a timestamp is taken as seconds (1e11 ms is 1973; 1e11 s is year 5138).
const SECONDS_BELOW: i64 = 100_000_000_000;

fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
    let n = f64::deserialize(d)? as i64;
    Ok(if n.abs() < SECONDS_BELOW { n * 1000 } else { n })
}

fn opt_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.map(|f| {
        let n = f as i64;
        if n.abs() < SECONDS_BELOW { n * 1000 } else { n }
    }))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub value: f64,
    pub currency_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRef {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub ucode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    #[serde(default)]
    pub name: Option<String>,
    pub email: String,
    #[serde(default)]
    pub ucode: Option<String>,
}

/// `purchase` of a sales-history item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SalePurchase {
    pub transaction: String,
    #[serde(default, deserialize_with = "opt_millis")]
    pub order_date: Option<Millis>,
    #[serde(default, deserialize_with = "opt_millis")]
    pub approved_date: Option<Millis>,
    pub status: String,
    #[serde(default)]
    pub recurrency_number: Option<u32>,
    #[serde(default)]
    pub is_subscription: bool,
    #[serde(default)]
    pub price: Option<Price>,
    #[serde(default, deserialize_with = "opt_millis")]
    pub warranty_expire_date: Option<Millis>,
}

/// One item of `GET /payments/api/v1/sales/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sale {
    pub product: ProductRef,
    pub buyer: Person,
    pub purchase: SalePurchase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub recurrency_period: Option<u32>,
}

/// One item of `GET /payments/api/v1/subscriptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub subscriber_code: String,
    #[serde(default)]
    pub subscription_id: Option<i64>,
    pub status: String,
    #[serde(deserialize_with = "millis")]
    pub accession_date: Millis,
    #[serde(default, deserialize_with = "opt_millis")]
    pub date_next_charge: Option<Millis>,
    #[serde(default)]
    pub transaction: Option<String>,
    #[serde(default)]
    pub plan: Option<PlanRef>,
    pub product: ProductRef,
    #[serde(default)]
    pub price: Option<Price>,
    pub subscriber: Person,
}

/// One charge of `GET /payments/api/v1/subscriptions/{code}/purchases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionPurchase {
    pub transaction: String,
    #[serde(default, deserialize_with = "opt_millis")]
    pub approved_date: Option<Millis>,
    pub status: String,
    #[serde(default)]
    pub price: Option<Price>,
    #[serde(default)]
    pub payment_type: Option<String>,
    #[serde(default)]
    pub recurrency_number: Option<u32>,
}

/// One item of `GET /products/api/v1/products`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub ucode: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub is_subscription: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    #[serde(default)]
    pub total_results: Option<u64>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub prev_page_token: Option<String>,
    #[serde(default)]
    pub results_per_page: Option<u32>,
}

/// One page of a cursor-paged list; the last page has no `next_page_token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub page_info: PageInfo,
}

impl<T> Page<T> {
    pub fn next(&self) -> Option<&str> {
        self.page_info.next_page_token.as_deref().filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_shapes_parse_and_seconds_become_millis() {
        let s: Subscription = serde_json::from_str(
            r#"{"subscriber_code":"ABC12DEF","subscription_id":123456,"status":"ACTIVE",
            "accession_date":1577847600,"request_date":1577847600000,"date_next_charge":1580558059000,
            "trial":false,"transaction":"HP16616613605324",
            "plan":{"name":"Plan name","id":726420,"recurrency_period":30,"max_charge_cycles":6},
            "product":{"id":123456,"name":"Product Name","ucode":"x"},
            "price":{"value":123.45,"currency_code":"BRL"},
            "subscriber":{"name":"A","email":"subscriber@email.com.br","ucode":"y"}}"#,
        )
        .unwrap();
        assert_eq!(s.accession_date, 1_577_847_600_000);
        assert_eq!(s.date_next_charge, Some(1_580_558_059_000));
        let sale: Sale = serde_json::from_str(
            r#"{"product":{"id":2125812,"name":"P"},"buyer":{"name":"I","ucode":"u","email":"ian@teste.com"},
            "producer":{"name":"x","ucode":"y"},
            "purchase":{"transaction":"HP12455690122399","order_date":1622948400000,
            "approved_date":1622948400000,"status":"APPROVED","recurrency_number":2,
            "is_subscription":false,"commission_as":"PRODUCER","price":{"value":235.76,"currency_code":"USD"},
            "payment":{"method":"BILLET","installments_number":1,"type":"BILLET"},
            "offer":{"payment_mode":"INVOICE","code":"k2pasun0"},"warranty_expire_date":1625022000000}}"#,
        )
        .unwrap();
        assert_eq!(sale.purchase.price.unwrap().currency_code.as_deref(), Some("USD"));
        let page: Page<Product> =
            serde_json::from_str(r#"{"items":[],"page_info":{"results_per_page":50}}"#).unwrap();
        assert_eq!(page.next(), None);
    }
}
